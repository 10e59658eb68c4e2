"""802.1Q tags for VM ports, without the kernel's 8021q module.

On SmartOS a VM's NIC on a network with a VLAN id is a VNIC over the overlay
that tags the VM's (untagged) frames with that id and only lets frames of that
id back in. Linux's VLAN devices and VLAN-filtering bridges would do it, but
the kernels of these machines are built without them (``CONFIG_VLAN_8021Q``,
``CONFIG_BRIDGE_VLAN_FILTERING``), so the lab does it with two tiny tc eBPF
programs on the node's end of each VM port:

* ingress (from the VM): push the tag ``vid`` (nothing for VLAN 0);
* egress (to the VM): pass only frames tagged ``vid`` and pop the tag (VLAN 0:
  pass only untagged frames); drop everything else.

The tag is then carried inside the VXLAN packet (4 bytes of the path MTU, as on
SmartOS). Run inside a node's namespace, as root::

    ip netns exec NODE python vlan.py PORT=VID [PORT=VID ...]

The programs are loaded with the bpf(2) system call and pinned in a private
bpffs (``ip netns exec`` gives this process its own mount namespace) so that tc
can attach them; they stay attached after the process exits.
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import sys
import tempfile

SYS_BPF = 321  # x86_64
BPF_PROG_LOAD, BPF_OBJ_PIN = 5, 6
BPF_PROG_TYPE_SCHED_CLS = 3

# eBPF opcodes used below
MOV_IMM, LOAD_WORD, AND_IMM, JUMP_EQ_IMM, JUMP_NE_IMM, CALL, EXIT = (
    0xB7, 0x61, 0x57, 0x15, 0x55, 0x85, 0x95)
SKB_VLAN_PRESENT, SKB_VLAN_TCI = 20, 24  # offsets in struct __sk_buff
HELPER_VLAN_PUSH, HELPER_VLAN_POP = 18, 19
TC_ACT_OK, TC_ACT_SHOT = 0, 2
ETH_P_8021Q_BE = 0x0081  # htons(0x8100) on a little-endian machine


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def push_program(vid: int) -> bytes:
    """r0 = bpf_skb_vlan_push(skb, 802.1Q, vid); return OK."""
    return b"".join([
        insn(MOV_IMM, 2, imm=ETH_P_8021Q_BE), insn(MOV_IMM, 3, imm=vid),
        insn(CALL, imm=HELPER_VLAN_PUSH), insn(MOV_IMM, 0, imm=TC_ACT_OK), insn(EXIT)])


def pop_program(vid: int) -> bytes:
    """VLAN 0: untagged frames only. Else: frames tagged ``vid`` only, untagged on the way."""
    if vid == 0:
        return b"".join([
            insn(LOAD_WORD, 2, 1, SKB_VLAN_PRESENT), insn(JUMP_NE_IMM, 2, off=2, imm=0),
            insn(MOV_IMM, 0, imm=TC_ACT_OK), insn(EXIT),
            insn(MOV_IMM, 0, imm=TC_ACT_SHOT), insn(EXIT)])
    return b"".join([
        insn(LOAD_WORD, 2, 1, SKB_VLAN_PRESENT), insn(JUMP_EQ_IMM, 2, off=6, imm=0),
        insn(LOAD_WORD, 3, 1, SKB_VLAN_TCI), insn(AND_IMM, 3, imm=0xFFF),
        insn(JUMP_NE_IMM, 3, off=3, imm=vid),
        insn(CALL, imm=HELPER_VLAN_POP), insn(MOV_IMM, 0, imm=TC_ACT_OK), insn(EXIT),
        insn(MOV_IMM, 0, imm=TC_ACT_SHOT), insn(EXIT)])


def _bpf(command: int, attr: bytes) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(attr.ljust(128, b"\0"))
    result = libc.syscall(SYS_BPF, command, buffer, 128)
    if result < 0:
        raise OSError(ctypes.get_errno(), f"bpf({command}) failed")
    return result


def load_and_pin(program: bytes, path: str) -> None:
    code = ctypes.create_string_buffer(program)
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(16384)
    try:
        fd = _bpf(BPF_PROG_LOAD, struct.pack(
            "<IIQQIIQ", BPF_PROG_TYPE_SCHED_CLS, len(program) // 8, ctypes.addressof(code),
            ctypes.addressof(license_), 1, len(log), ctypes.addressof(log)))
    except OSError as exc:
        raise OSError(exc.errno, f"loading a tc program: {log.value.decode()}") from exc
    name = ctypes.create_string_buffer(path.encode())
    _bpf(BPF_OBJ_PIN, struct.pack("<QI", ctypes.addressof(name), fd))
    os.close(fd)


def tag_ports(ports: dict[str, int]) -> None:
    """Attach the push/pop programs to each port (in the current network namespace)."""
    pins = tempfile.mkdtemp(prefix="ovlab-bpf-")
    subprocess.run(["mount", "-t", "bpf", "bpf", pins], check=True)
    for port, vid in ports.items():
        subprocess.run(["tc", "qdisc", "add", "dev", port, "clsact"], check=True)
        hooks = {"egress": pop_program(vid)}
        if vid:
            hooks["ingress"] = push_program(vid)
        for hook, program in hooks.items():
            path = f"{pins}/{port}-{hook}"
            load_and_pin(program, path)
            subprocess.run(["tc", "filter", "add", "dev", port, hook, "bpf", "da",
                            "object-pinned", path], check=True)
    subprocess.run(["umount", pins], check=True)  # the filters keep their programs
    os.rmdir(pins)


if __name__ == "__main__":
    tag_ports({port: int(vid) for port, vid in (arg.split("=") for arg in sys.argv[1:])})

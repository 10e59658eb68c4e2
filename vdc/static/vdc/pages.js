// The vDC pages' small enhancements; every page also works without them.
// - After a failed submit, focus moves to the error summary, and its links focus their field.
// - The network form: the next free VLAN id for the chosen rule and VXLAN (fetched), and the
//   MTU guidance of the chosen rule.
(function () {
  "use strict";

  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var target = link && document.getElementById(link.getAttribute("href").slice(1));
      if (!target) return;
      event.preventDefault();
      target.scrollIntoView({block: "center"});
      target.focus();
    });
  }

  var form = document.querySelector("form[data-next-vlan-url]");
  if (!form) return;
  var rule = form.querySelector("#id_overlay_rule");
  var vxlan = form.querySelector("#id_vxlan_id");
  var vlan = form.querySelector("#id_vlan_id");
  var vlanHint = form.querySelector("#id_vlan_id_hint");
  var mtuHint = form.querySelector("#id_mtu_hint");
  var guidanceData = document.getElementById("mtu-guidance");
  var guidance = guidanceData ? JSON.parse(guidanceData.textContent) : {};
  var url = form.getAttribute("data-next-vlan-url");
  // Fill in the VLAN only while it is the page's own suggestion: never over what was typed.
  var fill = form.getAttribute("data-fill-vlan") === "yes";
  if (vlan) vlan.addEventListener("input", function () { fill = false; });
  var asked = 0;

  function showGuidance() {
    if (mtuHint && rule) mtuHint.textContent = guidance[rule.value] || "";
  }

  function suggestVlan() {
    if (!url || !rule || !vxlan || !/^\s*\d+\s*$/.test(vxlan.value)) return;
    var query = "overlay_rule=" + encodeURIComponent(rule.value)
      + "&vxlan_id=" + encodeURIComponent(vxlan.value.trim());
    var ticket = ++asked;
    fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + query,
          {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer || ticket !== asked) return;  // a newer question is under way
        if (fill && vlan && answer.next_free_vlan !== null) vlan.value = answer.next_free_vlan;
        if (vlanHint) vlanHint.textContent = answer.hint;
      })
      .catch(function () { /* the "Suggest a free VLAN" button still works */ });
  }

  if (rule) {
    rule.addEventListener("change", showGuidance);
    rule.addEventListener("change", suggestVlan);
  }
  if (vxlan) vxlan.addEventListener("change", suggestVlan);
})();

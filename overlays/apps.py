from django.apps import AppConfig
from django.core import checks

from overlays import secretbox


class OverlaysConfig(AppConfig):
    name = "overlays"
    verbose_name = "Overlays"

    def ready(self) -> None:
        # Refuse to start with OVERLAY_SECRETS_KEYS that cannot read the stored IPSec keys.
        checks.register(secretbox.check_secrets_keys, secretbox.CHECK_TAG)

import os

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# WSGI servers run no system checks: refuse to serve with OVERLAY_SECRETS_KEYS that cannot
# read the stored IPSec keys (overlays/secretbox.py), as runserver and manage.py do.
_problems = [message for message in checks.run_checks(tags=["secrets"]) if message.is_serious()]
if _problems:
    raise ImproperlyConfigured(" ".join(message.msg for message in _problems))

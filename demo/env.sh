# The demo's environment, sourced by bin/run (and by tests/pages/test_demo_server.py).
# The demo runs as production does, with debug off: a vDC admin who types another vDC's
# URL gets the project's plain 404 page, not Django's debug page listing every URL
# pattern. Ask for debug with DEBUG=1 bin/run (or DJANGO_DEBUG=1).
# It serves plain HTTP on loopback, so the HTTPS-only protections that debug-off turns on
# (redirect to HTTPS, HSTS, secure-only cookies) are off here unless set. WhiteNoise
# serves the static files in either mode.
export DJANGO_DEBUG="${DJANGO_DEBUG:-${DEBUG:-0}}"
export DJANGO_SECURE_SSL_REDIRECT="${DJANGO_SECURE_SSL_REDIRECT:-0}"
export DJANGO_SECURE_HSTS_SECONDS="${DJANGO_SECURE_HSTS_SECONDS:-0}"
export DJANGO_SESSION_COOKIE_SECURE="${DJANGO_SESSION_COOKIE_SECURE:-0}"
export DJANGO_CSRF_COOKIE_SECURE="${DJANGO_CSRF_COOKIE_SECURE:-0}"

"""The shell scripts the lab runs in its containers to first deploy and to reset an app checkout
and HAProxy, and which checkouts each host of a layout has."""

from __future__ import annotations

from bluegreen.lab.layouts import APP, APP_DIR, SHARED_APPS


def checkouts(layout: str, color: str) -> list[tuple[str, str]]:
    """(app dir, supervisor program) of every app on a `color` host of the layout."""
    if layout == "shared":
        return [(app.app_dir, app.program(color)) for app in SHARED_APPS]
    return [(APP_DIR, APP)]


# $1 the origin's repository, $2 the app dir, $3 the supervisor program.
FIRST_DEPLOY = """set -e
git clone -q "$1" "$2"
cd "$2"
python3 build.py >/dev/null
until supervisorctl status >/dev/null 2>&1 || [ $? -eq 3 ]; do sleep 0.1; done
supervisorctl start "$3" >/dev/null
"""


# $1 the initial commit, $2 the app dir, $3 the supervisor program.
RESET_APP = """set -e
until supervisorctl status >/dev/null 2>&1 || [ $? -eq 3 ]; do sleep 0.1; done
cd "$2"
if [ "$(git rev-parse HEAD)" != "$1" ] || [ ! -f dist/app.py ]; then
  git checkout -q --force "$1" && python3 build.py >/dev/null
fi
rm -f .env.display
rm -rf "$2.bluegreen-backups"
supervisorctl restart "$3" >/dev/null
"""

RESET_HAPROXY = """set -e
rm -rf /var/lib/bluegreen /var/lib/haproxy/*.json
cp /etc/haproxy/haproxy.cfg.lab-initial /etc/haproxy/haproxy.cfg
# conf.d (HAProxy's second -f) starts empty: files a test added there are gone.
rm -rf /etc/haproxy/conf.d && mkdir -p /etc/haproxy/conf.d
# A reload starts a new worker from the file: runtime changes made by hand are gone with it.
haproxy-reload >/dev/null
"""

# Start keepalived's VRRP, or make a running one read its new config. A pid file left by an earlier
# run of the container may name another process now (HAProxy's), so its name is checked first.
START_KEEPALIVED = """set -e
pid=$(cat /run/keepalived.pid 2>/dev/null || true)
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = keepalived ]; then
  kill -HUP "$pid"
else
  rm -f /run/keepalived.pid /run/keepalived_vrrp.pid
  # Debian's keepalived logs to syslog or the console only: its console goes to a file.
  setsid keepalived --vrrp --dont-fork --log-console </dev/null >>/var/log/keepalived.log 2>&1 &
fi
"""

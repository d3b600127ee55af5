#!/bin/sh
# Fresh host keys per container, then supervisord (sshd + the app) as PID 1.
set -eu
ssh-keygen -A >/dev/null
# The app's colour comes from the container (BLUE or GREEN); supervisor passes it to the app.
export APP_COLOR="${APP_COLOR:-unknown}"
# Start the app after a container restart when it was deployed before.
if [ -f /opt/jw-attendant/dist/app.py ]; then
  sed -i 's/^autostart=false/autostart=true/' /etc/supervisor/conf.d/lab.conf
fi
exec /usr/bin/supervisord -c /etc/supervisor/supervisord.conf

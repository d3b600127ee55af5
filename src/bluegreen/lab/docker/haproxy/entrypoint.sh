#!/bin/sh
# sshd in the background, then HAProxy's master as PID 1 (master-worker: reloads hand sockets over).
set -eu
ssh-keygen -A >/dev/null
/usr/sbin/sshd -e
mkdir -p /run/haproxy
cp -n /etc/haproxy/haproxy.cfg /etc/haproxy/haproxy.cfg.lab-initial
exec haproxy -W -db -S /run/haproxy/master.sock,mode,600 -f /etc/haproxy/haproxy.cfg

#!/bin/sh
# sshd in the background, then HAProxy's master as PID 1 (master-worker: reloads hand sockets over).
set -eu
ssh-keygen -A >/dev/null
/usr/sbin/sshd -e
mkdir -p /run/haproxy
# First start: the layout the lab asked for (LAB_LAYOUT; the image's own cfg is `single`) becomes
# the cfg and its initial copy. A restart keeps whatever the cfg has become.
if [ ! -f /etc/haproxy/haproxy.cfg.lab-initial ]; then
  layout="${LAB_LAYOUT:-single}"
  [ "$layout" = single ] || cp "/etc/haproxy/layouts/$layout.cfg" /etc/haproxy/haproxy.cfg
  cp /etc/haproxy/haproxy.cfg /etc/haproxy/haproxy.cfg.lab-initial
fi
# Two -f arguments, as many hosts run: the main file and a directory (its *.cfg files in lexical
# order); bluegreen's config_files lists the same two.
mkdir -p /etc/haproxy/conf.d
exec haproxy -W -db -S /run/haproxy/master.sock,mode,600 -f /etc/haproxy/haproxy.cfg -f /etc/haproxy/conf.d

#!/bin/sh
# A daemon that logs its args and sleeps; SIGTERM ends it.
echo "daemon $$ args: $*"
exec sleep 600

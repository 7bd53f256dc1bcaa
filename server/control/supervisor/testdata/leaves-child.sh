# Starts a background child (one that ignores SIGTERM when $2 is
# "stubborn"), writes its pid to $1 and ends after $3 seconds with code $4.
if [ "$2" = stubborn ]; then
	sh -c "trap '' TERM; while :; do sleep 0.05; done" &
else
	sleep 600 &
fi
echo $! > "$1"
sleep "$3"
exit "$4"

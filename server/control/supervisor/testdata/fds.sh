# Prints what each of the shell's open descriptors refers to.
for f in /proc/$$/fd/*; do
	echo "${f##*/} $(readlink "$f")"
done

package loadtest

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procUserHZ is the kernel's USER_HZ, the clock tick /proc/<pid>/stat
// counts CPU time in. It is 100 on every architecture Go's linux ports
// run on in practice (x86, arm, arm64, riscv64, ppc64, s390x); reading it
// would need sysconf(_SC_CLK_TCK), that is cgo, for no gain.
const procUserHZ = 100

// SelfCPUSeconds is the CPU time, user plus system, this process has used
// so far, in seconds. Workers report it so ClientCPU covers them all.
func SelfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}

func tvSeconds(tv syscall.Timeval) float64 {
	return time.Duration(tv.Nano()).Seconds()
}

// procCPUSeconds reads process pid's user+system CPU time from
// /proc/<pid>/stat, in seconds.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat returns the user+system CPU seconds in a /proc/<pid>/stat
// line. The command name (field 2) may hold spaces and parentheses, so the
// fields are counted from its last ')': utime and stime, fields 14 and 15,
// are the 12th and 13th after it.
func parseProcStat(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errProcFormat("stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errProcFormat("stat")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errProcFormat("stat")
	}
	return float64(utime+stime) / procUserHZ, nil
}

// procRSSBytes reads process pid's resident set size (VmRSS) from
// /proc/<pid>/status, in bytes.
func procRSSBytes(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			break
		}
		return float64(kb) * 1024, nil
	}
	return 0, errProcFormat("status")
}

// errProcFormat reports a /proc file that did not read as expected.
type errProcFormat string

func (e errProcFormat) Error() string {
	return "loadtest: unexpected /proc/<pid>/" + string(e) + " format"
}

package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// exposition is a Prometheus text page in the shape termd serves, with
// lines the sampler must skip.
const exposition = `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 4.718592e+07
process_resident_memory_anon_bytes 1234
process_cpu_seconds_total 12.5 1700000000000
go_goroutines 12
termd_online{zone="a"} 5
termd_online 19000

`

func promServer(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func TestSamplerMetricsOnce(t *testing.T) {
	s := NewSampler(promServer(t, 200, exposition), 0, time.Second)
	got, err := s.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.RSS != 47185920 || got.CPU != 12.5 || got.Connected != 19000 || got.At.IsZero() {
		t.Errorf("sample %+v", got)
	}
	if _, err := NewSampler(promServer(t, 500, ""), 0, time.Second).Once(context.Background()); err == nil {
		t.Error("HTTP 500: no error")
	}
	if _, err := NewSampler(promServer(t, 200, "process_cpu_seconds_total x\n"), 0, time.Second).Once(context.Background()); err == nil {
		t.Error("bad value: no error")
	}
	if _, err := NewSampler("", 0, time.Second).Once(context.Background()); err == nil {
		t.Error("no source: no error")
	}
}

func TestSamplerRunConcurrent(t *testing.T) {
	s := NewSampler(promServer(t, 200, exposition), 0, 5*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	// Read while Run appends, until a few samples are in (bounded: a busy
	// machine may stretch the ticks).
	for deadline := time.Now().Add(10 * time.Second); len(s.Samples()) < 5 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	got := s.Samples()
	if len(got) < 5 {
		t.Fatalf("%d samples in 10 s at 5 ms", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].At.Before(got[i-1].At) || got[i].Connected != 19000 {
			t.Fatalf("sample %d: %+v after %+v", i, got[i], got[i-1])
		}
	}
}

func TestSamplerRunFirstAtOnce(t *testing.T) {
	s := NewSampler(promServer(t, 200, exposition), 0, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Samples()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if n := len(s.Samples()); n != 1 {
		t.Errorf("%d samples, want the one taken at once", n)
	}
}

// burnCPU spins until this process has used d more CPU time (not wall
// time: the machine may be busy with other tests), or 10 s pass.
func burnCPU(d time.Duration) {
	x := 0
	want := SelfCPUSeconds() + d.Seconds()
	for deadline := time.Now().Add(10 * time.Second); SelfCPUSeconds() < want && time.Now().Before(deadline); {
		for i := range 100000 {
			x += i
		}
	}
	_ = x
}

func TestSamplerOwnPid(t *testing.T) {
	burnCPU(50 * time.Millisecond)
	s := NewSampler("", os.Getpid(), time.Second)
	got, err := s.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	self := SelfCPUSeconds()
	if got.RSS < 1<<20 || got.Connected != 0 {
		t.Errorf("sample %+v: RSS below 1 MiB or Connected set", got)
	}
	// /proc counts in 10 ms ticks; getrusage is finer. Allow two ticks.
	if got.CPU <= 0 || got.CPU > self+0.02 || self-got.CPU > 0.1 {
		t.Errorf("/proc CPU %.3f s, getrusage %.3f s", got.CPU, self)
	}
	// The scrape's figures win; /proc fills what it lacks.
	s = NewSampler(promServer(t, 200, "termd_online 3\nprocess_cpu_seconds_total 99\n"), os.Getpid(), time.Second)
	if got, err = s.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.Connected != 3 || got.CPU != 99 || got.RSS < 1<<20 {
		t.Errorf("mixed sample %+v", got)
	}
	if _, err := NewSampler("", 1<<30, time.Second).Once(context.Background()); err == nil {
		t.Error("no such pid: no error")
	}
}

func TestCPUProcStat(t *testing.T) {
	// A command name with spaces and parentheses; utime 250, stime 50.
	line := "1234 (a) b (c)) S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10 18446744073709551615\n"
	got, err := parseProcStat(line)
	if err != nil || got != 3 {
		t.Errorf("parseProcStat = %v, %v; want 3 s", got, err)
	}
	if _, err := parseProcStat("1234 (short) S 1 2"); err == nil {
		t.Error("short line: no error")
	}
}

func TestSelfCPUSeconds(t *testing.T) {
	before := SelfCPUSeconds()
	burnCPU(30 * time.Millisecond)
	if d := SelfCPUSeconds() - before; d < 0.03 || d > 5 {
		t.Errorf("CPU grew by %.3f s while spinning for 30 ms of it", d)
	}
}

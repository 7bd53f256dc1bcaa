package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Worker process bounds.
const (
	// maxWorkerLine bounds one line of a worker's stdout: the final result
	// carries HDR histogram snapshots, a few hundred KB each at most.
	maxWorkerLine = 64 << 20
	// workerStopGrace is how long a worker has to report after it was
	// interrupted before it is killed.
	workerStopGrace = 15 * time.Second
	// workerExtraTime is how long past the run's own -timeout the parent
	// waits for workers (they start, ramp and report on their own).
	workerExtraTime = 30 * time.Second
	// staleProgress: a worker's last progress line older than this is
	// from a second already shown.
	staleProgress = 1500 * time.Millisecond
)

// worker is one running worker process as the parent sees it.
type worker struct {
	i     int
	cmd   *exec.Cmd
	marks *markSampler

	mu     sync.Mutex
	last   *Progress
	result *Result
	errMsg string
}

// markSampler takes the parent's server samples at the merged marks of
// its workers (see Result.Merge): at the ramp's end once the last worker
// has ended its ramp (until then one is still connecting), and at the
// measured phase's end as soon as the first worker has ended its phase
// (next, that one closes its connections; it holds still for markHold
// first). Between the two samples every worker is in its measured phase.
type markSampler struct {
	r   *runner
	ctx context.Context
	n   int // workers

	mu     sync.Mutex
	done   map[int]bool // workers past their ramp, or whose output ended
	ramped bool         // some worker reported the ramp's end
	at     map[string]time.Time
}

func newMarkSampler(ctx context.Context, r *runner, n int) *markSampler {
	return &markSampler{r: r, ctx: ctx, n: n, done: map[int]bool{}, at: map[string]time.Time{}}
}

// note records that worker i reached mark, or with mark "" that its
// output ended (it will report nothing more), and samples the server if
// that completes a merged mark.
func (m *markSampler) note(i int, mark string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch mark {
	case MarkMeasureEnd:
		if m.at[mark].IsZero() {
			m.at[mark] = m.r.sample(m.ctx)
		}
		return
	case MarkRampEnd:
		m.ramped = true
	}
	m.done[i] = true
	if len(m.done) == m.n && m.ramped && m.at[MarkRampEnd].IsZero() {
		m.at[MarkRampEnd] = m.r.sample(m.ctx)
	}
}

// moment is when the parent sampled at mark; zero if it did not.
func (m *markSampler) moment(mark string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.at[mark]
}

// runParent runs -procs workers (this program re-executed with -worker i
// and the same flags), shows their aggregated progress, samples the
// server, and merges their results.
func (c *CLI) runParent(ctx context.Context, f *cliFlags, args []string) (*Result, error) {
	// Check each worker's share here, so a bad flag fails once, not K times.
	for i := range f.procs {
		s := share(f.cfg, f.procs, i)
		if err := s.validate(); err != nil {
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
	}
	cfg := f.cfg
	cfg.fillTimeout()
	// Workers' stderr and the progress line share the parent's stderr.
	c = &CLI{Stdout: c.Stdout, Stderr: &syncWriter{w: c.Stderr}, Getenv: c.Getenv, Self: c.Self, WorkerEnv: c.WorkerEnv}
	self := c.Self
	if self == "" {
		self = os.Args[0]
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout+workerExtraTime)
	defer cancel()

	r := &runner{cfg: cfg}
	stopSampler := r.startSampler(ctx)
	marks := newMarkSampler(ctx, r, f.procs)
	started := time.Now()

	workers := make([]*worker, f.procs)
	var wg sync.WaitGroup
	var startErr error
	for i := range workers {
		w := &worker{i: i, marks: marks}
		w.cmd = exec.CommandContext(ctx, self, append(append([]string(nil), args...), "-"+hiddenWorkerFlag, strconv.Itoa(i))...)
		w.cmd.Env = append(os.Environ(), c.WorkerEnv...)
		w.cmd.Stderr = c.Stderr
		// Interrupt rather than kill, so the worker reports what it has.
		w.cmd.Cancel = func() error { return w.cmd.Process.Signal(os.Interrupt) }
		w.cmd.WaitDelay = workerStopGrace
		out, err := w.cmd.StdoutPipe()
		if err == nil {
			err = w.cmd.Start()
		}
		if err != nil {
			startErr = fmt.Errorf("worker %d: %w", i, err)
			break
		}
		workers[i] = w
		wg.Go(func() { w.read(out) })
	}
	if startErr != nil {
		cancel()
		for i, w := range workers {
			if w == nil {
				marks.note(i, "") // never started: nothing to wait for
			}
		}
	}

	done := make(chan struct{})
	var waitErrs []error
	go func() {
		defer close(done)
		wg.Wait() // every stdout read to EOF
		for _, w := range workers {
			if w == nil {
				continue
			}
			if err := w.cmd.Wait(); err != nil {
				waitErrs = append(waitErrs, fmt.Errorf("worker %d: %w", w.i, err))
			}
		}
	}()
	c.aggregate(done, started, workers, f.quiet)
	r.sample(ctx)
	stopSampler()

	var res *Result
	errs := append([]error{startErr}, waitErrs...)
	for _, w := range workers {
		if w == nil {
			continue
		}
		if w.errMsg != "" {
			errs = append(errs, fmt.Errorf("worker %d: %s", w.i, w.errMsg))
		}
		switch {
		case w.result == nil:
			errs = append(errs, fmt.Errorf("worker %d: no result", w.i))
		case res == nil:
			res = w.result
		default:
			res.Merge(w.result)
		}
	}
	if res != nil && r.sampler != nil {
		res.Server = mergeSamples(r.sampler.Samples(), r.extra)
		// The merged marks are the workers' moments; the server samples
		// are the parent's, taken a moment later: the marks move to them.
		for _, m := range []struct {
			name string
			t    *time.Time
		}{{MarkRampEnd, &res.RampEnd}, {MarkMeasureEnd, &res.MeasureEnd}} {
			if at := marks.moment(m.name); !at.IsZero() && !m.t.IsZero() {
				*m.t = at
			}
		}
	}
	return res, errors.Join(errs...)
}

// read consumes a worker's JSON lines until EOF. A mark goes to the
// mark sampler at once.
func (w *worker) read(out io.Reader) {
	defer w.marks.note(w.i, "")
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), maxWorkerLine)
	for sc.Scan() {
		var line workerLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			continue // not ours (a stray print); the result line decides
		}
		if p := line.Progress; p != nil && p.Mark != "" {
			w.marks.note(w.i, p.Mark)
			continue
		}
		w.mu.Lock()
		if line.Progress != nil {
			w.last = line.Progress
		}
		if line.Result != nil {
			w.result = line.Result
		}
		if line.Error != "" {
			w.errMsg = line.Error
		}
		w.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, out)
}

// aggregate prints the workers' summed progress once a second until done.
func (c *CLI) aggregate(done <-chan struct{}, start time.Time, workers []*worker, quiet bool) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if quiet {
			continue
		}
		var sum Progress
		sum.At = time.Now()
		n := 0
		for _, w := range workers {
			if w == nil {
				continue
			}
			w.mu.Lock()
			last := w.last
			w.mu.Unlock()
			if last == nil {
				continue
			}
			p := *last
			if sum.At.Sub(p.At) > staleProgress {
				// This worker's second is not in yet: keep its fleet, not
				// last second's rates.
				p.Sent, p.Answered = 0, 0
			}
			n++
			sum.Phase = p.Phase
			sum.Connected += p.Connected
			sum.Sent += p.Sent
			sum.Answered += p.Answered
			sum.Errors += p.Errors
			sum.Skipped += p.Skipped
			// The largest worker p99 is an upper bound of the fleet's.
			sum.P99us = max(sum.P99us, p.P99us)
		}
		if n > 0 {
			sum.Phase = fmt.Sprintf("%s [%d/%d]", sum.Phase, n, len(workers))
			c.printProgress(start, sum)
		}
	}
}

// syncWriter serialises writes from the workers' stderr copiers and the
// progress line.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

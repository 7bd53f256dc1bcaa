package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metrics the sampler reads from a Prometheus text exposition (termd's
// /metrics: VictoriaMetrics' process metrics plus termd's own).
const (
	metricRSS       = "process_resident_memory_bytes"
	metricCPU       = "process_cpu_seconds_total"
	metricConnected = "termd_online"
)

const (
	// scrapeTimeout bounds one /metrics request: a server too loaded to
	// answer within it yields no sample rather than a stalled sampler.
	scrapeTimeout = 2 * time.Second
	// scrapeMaxBytes bounds the exposition read; termd's is ~20 KB.
	scrapeMaxBytes = 4 << 20
	// sampleEveryDefault is the period when NewSampler is given none.
	sampleEveryDefault = time.Second
)

// Sampler records the server's resident memory, CPU time and connected
// count over a run. It scrapes metricsURL when set, and reads /proc for
// pid when pid > 0 (for peers such as mosquitto that have no /metrics);
// /proc fills only what the scrape did not give.
type Sampler struct {
	url    string
	pid    int
	every  time.Duration
	client *http.Client

	mu      sync.Mutex
	samples []ServerSample
}

// NewSampler returns a sampler of metricsURL and/or process pid, every
// `every` (1 s if ≤ 0) once Run. Connected is 0 in samples when unknown
// (no termd_online, or /proc only).
func NewSampler(metricsURL string, pid int, every time.Duration) *Sampler {
	if every <= 0 {
		every = sampleEveryDefault
	}
	return &Sampler{url: metricsURL, pid: pid, every: every, client: &http.Client{Timeout: scrapeTimeout}}
}

// Run samples at once and then every s.every until ctx ends. A failed
// sample is skipped; Samples may be called concurrently.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		if sm, err := s.Once(ctx); err == nil {
			s.mu.Lock()
			s.samples = append(s.samples, sm)
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Samples returns a copy of the samples so far, oldest first.
func (s *Sampler) Samples() []ServerSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ServerSample(nil), s.samples...)
}

// Once takes one sample now, without recording it.
func (s *Sampler) Once(ctx context.Context) (ServerSample, error) {
	sm := ServerSample{At: time.Now()}
	if s.url == "" && s.pid <= 0 {
		return sm, errors.New("loadtest: sampler has neither a metrics URL nor a pid")
	}
	if s.url != "" {
		if err := s.scrape(ctx, &sm); err != nil {
			return sm, err
		}
	}
	if s.pid > 0 {
		var err error
		if sm.RSS == 0 {
			if sm.RSS, err = procRSSBytes(s.pid); err != nil {
				return sm, err
			}
		}
		if sm.CPU == 0 {
			if sm.CPU, err = procCPUSeconds(s.pid); err != nil {
				return sm, err
			}
		}
	}
	return sm, nil
}

// scrape reads the three metrics from s.url into sm.
func (s *Sampler) scrape(ctx context.Context, sm *ServerSample) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadtest: GET %s: %s", s.url, resp.Status)
	}
	return parseExposition(io.LimitReader(resp.Body, scrapeMaxBytes), sm)
}

// parseExposition reads the unlabelled samples of the metrics the sampler
// wants from Prometheus text format; other lines are skipped.
func parseExposition(r io.Reader, sm *ServerSample) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case metricRSS:
			dst = &sm.RSS
		case metricCPU:
			dst = &sm.CPU
		case metricConnected:
			dst = &sm.Connected
		default:
			continue
		}
		value, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // a timestamp may follow
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("loadtest: metric %s: %w", name, err)
		}
		*dst = v
	}
	return sc.Err()
}

package loadtest

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// idleResult is an idle run of n terminals whose server grew from 10 MB
// to peak and held held (MB) at the hold's end.
func idleResult(n int, peak, held float64) *Result {
	return &Result{
		Scenario: ScenarioIdle, Terminals: n, Started: t0,
		RampEnd: t0.Add(time.Second), MeasureEnd: t0.Add(3 * time.Second),
		Counts: map[string]uint64{"connect_ok": uint64(n)},
		Server: []ServerSample{
			{At: t0, RSS: 10e6, CPU: 1},
			{At: t0.Add(time.Second), RSS: peak * 1e6, CPU: 2},
			{At: t0.Add(3 * time.Second), RSS: held * 1e6, CPU: 2},
			{At: t0.Add(4 * time.Second), RSS: 99e6, CPU: 3}, // teardown: never in a figure
		},
	}
}

// TestPeerTable: three runs, three servers; medians with ranges, ratios
// per run, a missing run's cell left out, and the Markdown written
// between the markers of a document.
func TestPeerTable(t *testing.T) {
	dir := t.TempDir()
	// bytes per terminal = (MB − 10) × 1e6 / 1,000 terminals.
	idle := map[string][3][2]float64{ // server → run → peak, held
		"termd":     {{12, 11.5}, {12.4, 11.4}, {11.8, 11.2}}, // peaks 2,000 2,400 1,800
		"mosquitto": {{11, 11}, {11, 11}, {11.2, 11.2}},       // 1,000 1,000 1,200
		"floor":     {{10.5, 10.5}, {10.6, 10.6}, {10.6, 10.6}},
	}
	var runs []string
	for i := range 3 {
		run := filepath.Join(dir, "run"+string(rune('1'+i)))
		runs = append(runs, run)
		for srv, v := range idle {
			if srv == "floor" && i == 2 {
				continue // the floor missed the third run
			}
			if err := idleResult(1000, v[i][0], v[i][1]).WriteJSON(filepath.Join(run, srv+"-idle.json")); err != nil {
				t.Fatal(err)
			}
		}
	}
	tab, err := LoadPeerTable(runs)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tab.Markdown(&out)
	got := out.String()
	for _, want := range []string{
		`| figure (median of 3 runs, range in brackets) |`,
		// termd peaks 2,000 / 2,400 / 1,800; mosquitto 1,000 / 1,000 /
		// 1,200; ratios per run 2.0 / 2.4 / 1.5; floor runs 1 and 2 only.
		`| idle 19,000: RSS per terminal, peak while held, B | 2,000 (1,800–2,400) | 1,000 (1,000–1,200) | 550 (500–600) | ×2.00 (1.50–2.40) | ×4.00 (4.00–4.00) |`,
		`| idle 19,000: RSS per terminal, held (end of the hold), B | 1,400 (1,200–1,500) |`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "heartbeat") {
		t.Errorf("rows without any result are printed:\n%s", got)
	}

	doc := []byte("# perf\n\nbefore\n" + PeerMarkBegin + "\nold table\n" + PeerMarkEnd + "\nafter\n")
	nd, err := ReplaceBetweenMarks(doc, out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if s := string(nd); strings.Contains(s, "old table") || !strings.Contains(s, got) ||
		!strings.HasPrefix(s, "# perf\n\nbefore\n"+PeerMarkBegin+"\n") || !strings.HasSuffix(s, PeerMarkEnd+"\nafter\n") {
		t.Errorf("replaced document:\n%s", nd)
	}
	if _, err := ReplaceBetweenMarks([]byte("no markers"), out.Bytes()); err == nil {
		t.Error("a document without markers was accepted")
	}

	// The command: prints and writes the document.
	docPath := filepath.Join(dir, "performance.md")
	if err := os.WriteFile(docPath, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cli := &CLI{Stdout: &stdout, Stderr: &stderr}
	if err := cli.Run(t.Context(), append([]string{"peer-table", "-docs", docPath, "-note", "3 runs on a test"}, runs...)); err != nil {
		t.Fatal(err, stderr.String())
	}
	written, _ := os.ReadFile(docPath)
	if !strings.Contains(stdout.String(), "3 runs on a test\n\n| figure") || !strings.Contains(string(written), stdout.String()) {
		t.Errorf("stdout:\n%s\ndocument:\n%s", stdout.String(), written)
	}
}

// TestPeerFiguresCovered: every scenario a row reads is one bench-peer.sh
// runs by default, and every scenario it runs by default has a row, so
// the script and the table cannot drift apart.
func TestPeerFiguresCovered(t *testing.T) {
	b, err := os.ReadFile("scripts/bench-peer.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^SCENARIOS=\$\{SCENARIOS:-"([^"]+)"\}`).FindSubmatch(b)
	if m == nil {
		t.Fatal("bench-peer.sh has no SCENARIOS default")
	}
	runs := map[string]bool{}
	for _, s := range strings.Fields(string(m[1])) {
		runs[s] = true
	}
	rows := map[string]bool{}
	for _, f := range peerFigures {
		rows[f.scenario] = true
		if !runs[f.scenario] {
			t.Errorf("row %q reads scenario %q, which bench-peer.sh does not run by default", f.name, f.scenario)
		}
	}
	for s := range runs {
		if !rows[s] {
			t.Errorf("bench-peer.sh runs %q, which no row of the table reads", s)
		}
	}
}

func TestGroupThousands(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "999": "999", "1000": "1,000", "1234567.89": "1,234,567.89", "-12345": "-12,345", "0.26": "0.26"} {
		if got := groupThousands(in); got != want {
			t.Errorf("groupThousands(%q) = %q, want %q", in, got, want)
		}
	}
}

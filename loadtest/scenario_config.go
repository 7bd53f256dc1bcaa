package loadtest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"syscall"
	"time"

	"github.com/termd/termd/protocol"
)

// Config is one termload run, as the flags describe it. Rates are per
// terminal per second, except churn's, which is events per second for
// the whole run.
type Config struct {
	// Scenario is connect, idle, heartbeat, mixed, churn, upgrade or campaign.
	Scenario string
	// Proto is tgp or mqtt; Target the server's host:port.
	Proto  string
	Target string
	// Secret is the TGP fleet secret.
	Secret []byte
	// N is this process's terminals (1..MaxTerminalsPerProc).
	N int
	// Concurrency bounds connects in flight (dial + HELLO).
	Concurrency int
	// Rate: heartbeat and mixed, requests per terminal per second (the
	// first step's with Saturate); churn, events per second in all.
	Rate float64
	// Duration is how long the load runs after the ramp; for connect, the
	// bound on the ramp.
	Duration time.Duration
	// Settle (connect) is how long the terminals stay connected after the
	// ramp before the run ends: the server's deferred work for the
	// connects (write-behind flushes, collection) falls in it, and
	// "connects per server CPU-second (ramp + settle)" counts it.
	Settle time.Duration
	// Timeout is the hard limit on the whole run; 0: Duration (or the
	// saturation steps) plus two minutes.
	Timeout time.Duration
	// Saturate raises the rate by StepFactor every StepDuration, up to
	// MaxRate, until achieved/offered falls under 95 %.
	Saturate     bool
	StepFactor   float64
	StepDuration time.Duration
	MaxRate      float64
	// Pipeline is the outstanding requests per terminal with Saturate
	// and in mixed (1..16); otherwise a terminal waits for each answer.
	Pipeline int
	// Mix is mixed's "kind=weight,..." (see ParseMix).
	Mix string
	// TakeoverShare is the share of churn events that are takeovers.
	TakeoverShare float64
	// UpgradeShare is the percentage of terminals that upgrade in the
	// upgrade scenario; FailShare the percentage of those that report
	// FAILED instead of SUCCEEDED.
	UpgradeShare int
	FailShare    int
	// CampaignBox is the campaign scenario's bounding box of terminal
	// coordinates, "minLat,minLon,maxLat,maxLon"; SystemID the system id
	// terminals send; CampaignHB how often a terminal heartbeats between
	// its steps; CampaignDownload makes PROCEED's url fetched.
	CampaignBox      string
	SystemID         string
	CampaignHB       time.Duration
	CampaignDownload bool
	// CampaignShare is the percentage of terminals in the campaign
	// scenario's campaign; the others heartbeat at every slot.
	CampaignShare int
	// Src is auto, off or A-B (see ParseSource).
	Src string
	// Metrics is the server's /metrics URL and ServerPID its process, for
	// the sampler; neither: no server figures.
	Metrics   string
	ServerPID int
	// IDPrefix and IDOffset make terminal i's device id
	// IDPrefix + (IDOffset+i), zero-padded; workers get distinct offsets.
	IDPrefix string
	IDOffset int
	// HelloTimeout fails a connect without a session by then; AckTimeout
	// closes a terminal whose request waits that long; DialTimeout bounds
	// the TCP connect.
	HelloTimeout time.Duration
	AckTimeout   time.Duration
	DialTimeout  time.Duration
	// Loops is the number of event loops, 0 for one per CPU.
	Loops int
	// NoSampler: a worker leaves sampling to the parent, and reports the
	// moments the parent must sample the server at to progress, as
	// Progress.Mark lines.
	NoSampler bool
}

// Progress is one second of a running scenario, for the live line.
type Progress struct {
	At        time.Time `json:"at"`
	Phase     string    `json:"phase"`
	Connected int       `json:"connected"`
	// Sent and Answered are this second's; Errors and Skipped the run's.
	Sent     uint64 `json:"sent"`
	Answered uint64 `json:"answered"`
	Errors   uint64 `json:"errors"`
	Skipped  uint64 `json:"skipped"`
	P99us    int64  `json:"p99_us"`
	// Mark, when set, makes this no second's progress but a moment of the
	// run (MarkRampEnd, MarkMeasureEnd) at At; only runs with NoSampler
	// report marks, for their parent to sample the server then.
	Mark string `json:"mark,omitempty"`
}

// validate checks cfg and fills derived defaults.
func (c *Config) validate() error {
	switch c.Scenario {
	case ScenarioConnect, ScenarioIdle, ScenarioHeartbeat, ScenarioMixed, ScenarioChurn, ScenarioUpgrade, ScenarioCampaign:
	default:
		return fmt.Errorf("-scenario %q: want connect, idle, heartbeat, mixed, churn, upgrade or campaign", c.Scenario)
	}
	switch c.Proto {
	case "tgp", "mqtt":
	default:
		return fmt.Errorf("-proto %q: want tgp or mqtt", c.Proto)
	}
	switch {
	case c.N < 1:
		return errors.New("-n must be at least 1")
	case c.N > MaxTerminalsPerProc:
		return fmt.Errorf("-n %d is more than one process holds (file descriptor limit): use -procs %d or more",
			c.N, (c.N+MaxTerminalsPerProc-1)/MaxTerminalsPerProc)
	case c.Concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case c.Duration <= 0 && c.Scenario != ScenarioConnect:
		return errors.New("-duration must be positive")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return errors.New("-rate must be a positive number")
	case c.Scenario != ScenarioChurn && (c.Rate > maxRatePerTerminal || c.MaxRate > maxRatePerTerminal):
		return fmt.Errorf("-rate and -max-rate are per terminal per second, at most %d (termd's default frame limit is 50/s)", maxRatePerTerminal)
	case c.UpgradeShare < 0 || c.UpgradeShare > 100 || c.FailShare < 0 || c.FailShare > 100:
		return errors.New("-upgrade-share and -fail-share are percentages, 0..100")
	case (c.Scenario == ScenarioUpgrade || c.Scenario == ScenarioCampaign) && c.Proto != "tgp":
		return fmt.Errorf("-scenario %s needs -proto tgp", c.Scenario)
	case c.Scenario == ScenarioCampaign && (c.CampaignShare < 0 || c.CampaignShare > 100):
		return errors.New("-campaign-share is a percentage, 0..100")
	case c.Scenario == ScenarioCampaign && c.CampaignHB <= 0:
		return errors.New("-campaign-hb must be positive")
	case c.Scenario == ScenarioCampaign && len(c.SystemID) > protocol.MaxID:
		return fmt.Errorf("-system-id %q: at most %d bytes", c.SystemID, protocol.MaxID)
	case c.Rate == 0 && (c.Scenario == ScenarioHeartbeat || c.Scenario == ScenarioMixed || c.Scenario == ScenarioChurn ||
		c.Scenario == ScenarioUpgrade || c.Scenario == ScenarioCampaign):
		return fmt.Errorf("-rate must be positive for %s", c.Scenario)
	case c.Pipeline < 1 || c.Pipeline > maxPipeline:
		return fmt.Errorf("-pipeline must be 1..%d (TGP's outstanding request limit)", maxPipeline)
	case c.TakeoverShare < 0 || c.TakeoverShare > 1:
		return errors.New("-takeover-share must be in [0, 1]")
	case c.HelloTimeout <= 0 || c.AckTimeout <= 0 || c.DialTimeout <= 0:
		return errors.New("-hello-timeout, -ack-timeout and -dial-timeout must be positive")
	}
	if c.Scenario == ScenarioCampaign {
		if err := (&CampaignPlan{}).ParseBox(c.CampaignBox); err != nil {
			return err
		}
	}
	if c.Saturate {
		if c.StepFactor <= 1 || c.StepDuration <= 0 || c.MaxRate < c.Rate {
			return errors.New("-saturate needs -step-factor > 1, -step-duration > 0 and -max-rate ≥ -rate")
		}
		if c.Scenario != ScenarioHeartbeat && c.Scenario != ScenarioMixed {
			return errors.New("-saturate applies to the heartbeat and mixed scenarios")
		}
	}
	if id := deviceID(c.IDPrefix, c.IDOffset+c.N-1); !protocol.ValidDeviceID(id) {
		return fmt.Errorf("-id-prefix %q makes invalid device ids like %q", c.IDPrefix, id)
	}
	if c.Scenario == ScenarioChurn {
		if need := churnMinTerminals(c.Rate, c.Duration); c.N < need {
			return fmt.Errorf("churn at %g/s for %s needs -n ≥ %d: each device id may be replaced at most %d times in %s (termd's duplicate-device limit is 5)",
				c.Rate, c.Duration, need, replacesPerWindow, replaceWindow)
		}
	}
	c.fillTimeout()
	return nil
}

// fillTimeout sets the default -timeout: the run's own length plus
// timeoutSlack.
func (c *Config) fillTimeout() {
	if c.Timeout > 0 {
		return
	}
	c.Timeout = c.Duration + timeoutSlack
	if c.Saturate && c.StepFactor > 1 {
		c.Timeout = time.Duration(saturateSteps(c.Rate, c.MaxRate, c.StepFactor))*c.StepDuration + timeoutSlack
	}
}

// saturateSteps is how many steps a -saturate run from rate to maxRate
// takes at most.
func saturateSteps(rate, maxRate, factor float64) int {
	n := 1
	for r := rate; r*factor <= maxRate && n < maxSteps; r *= factor {
		n++
	}
	return n
}

// checkFDs refuses a run that would exhaust this process's file
// descriptors: one per terminal, a dialer's socket during Enroll (gnet
// duplicates it), and a reserve for the rest.
func checkFDs(n, concurrency int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: let the run find out
	}
	need := uint64(n + min(concurrency, maxDialers) + fdReserve)
	if need > lim.Cur {
		return fmt.Errorf("%d terminals need about %d file descriptors, the limit is %d: use -procs (each process gets -n/procs) or a lower -concurrency",
			n, need, lim.Cur)
	}
	return nil
}

// churnMinTerminals is the smallest fleet over which churn at rate for
// d, spread round-robin, replaces no id more than replacesPerWindow times
// in any replaceWindow. Plain reconnects count too: the server may see a
// reconnect's HELLO before the old socket's close, as a replacement.
func churnMinTerminals(rate float64, d time.Duration) int {
	w := min(d, replaceWindow).Seconds()
	return int(math.Ceil(rate * w / replacesPerWindow))
}

// deviceID is terminal i's device id.
func deviceID(prefix string, i int) string {
	s := strconv.Itoa(i)
	for len(s) < idDigits {
		s = "0" + s
	}
	return prefix + s
}

package api

// Endpoints the operator console needs beside the ones termctl uses
// (docs/console.md): who a token is, the online trend, a fleet summary
// and the alert inbox. They are ordinary read endpoints; termctl and
// scripts may use them too.

// WhoAmI is GET /v1/whoami: the token the request was authorised with.
type WhoAmI struct {
	// Name is the token's name (logs, audit).
	Name string `json:"name"`
	// Scope is read, operator or node.
	Scope string `json:"scope"`
}

// OnlineTrend is GET /v1/stats/online-trend: devices online, sampled
// every IntervalS seconds over the last day, oldest first.
type OnlineTrend struct {
	IntervalS int           `json:"interval_s"`
	Samples   []TrendSample `json:"samples"`
}

// TrendSample is one sample of the online trend.
type TrendSample struct {
	AtMs   int64 `json:"at_ms"`
	Online int   `json:"online"`
}

// Fleet is GET /v1/fleet: a summary of the registry.
type Fleet struct {
	// AtMs is when the summary was made.
	AtMs int64 `json:"at_ms"`
	// Devices in the registry (or online and not flushed yet), and of
	// them online now.
	Devices int `json:"devices"`
	Online  int `json:"online"`
	// OfflineOver24h counts devices offline whose last sign of life is
	// more than 24 h old; Stale lists the longest offline of them (at
	// most MaxStale).
	OfflineOver24h int           `json:"offline_over_24h"`
	Stale          []StaleDevice `json:"stale"`
	// NeverSeen counts registry records of devices that never connected
	// (blocked or keyed before their first HELLO).
	NeverSeen int `json:"never_seen"`
	// Firmware counts devices by model × fw from their last HELLO;
	// Apps counts devices by app × model × version from their upgrade
	// queries and reports. Both are sorted by count, largest first.
	Firmware []VersionCount `json:"firmware"`
	Apps     []VersionCount `json:"apps"`
}

// MaxStale bounds Fleet.Stale.
const MaxStale = 20

// StaleDevice is a device offline for more than a day.
type StaleDevice struct {
	ID            string `json:"id"`
	LastSeenMs    int64  `json:"last_seen_ms"`
	OfflineReason string `json:"offline_reason,omitempty"`
	Model         string `json:"model,omitempty"`
}

// VersionCount is how many devices of a model run a version (of an app,
// or of their firmware when AppID is empty).
type VersionCount struct {
	AppID   string `json:"app_id,omitempty"`
	Model   string `json:"model"`
	Version string `json:"version"`
	Devices int    `json:"devices"`
}

// Alert kinds of GET /v1/alerts.
const (
	// AlertRolloutPaused: a phased rollout paused itself (its error
	// condition held).
	AlertRolloutPaused = "rollout_paused"
	// AlertStuck: terminals whose attempt at a release timed out or
	// reverted (stuck-terminal detection).
	AlertStuck = "stuck"
	// AlertDuplicate: a device id is in a duplicate-device cool-down.
	AlertDuplicate = "duplicate"
	// AlertNotifyFailed: failure notifications a channel gave up on.
	AlertNotifyFailed = "notify_failed"
	// AlertStorage: the node refuses durable writes (disk space).
	AlertStorage = "storage"
)

// Alert severities.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// Alert is one entry of the alert inbox: something an operator should
// look at, derived from the node's state when asked.
type Alert struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// AtMs is when it started, when known (0 otherwise).
	AtMs      int64  `json:"at_ms,omitempty"`
	ReleaseID string `json:"release_id,omitempty"`
	DeviceID  string `json:"device_id,omitempty"`
	Channel   string `json:"channel,omitempty"`
	// Count is how many devices or deliveries it concerns.
	Count   int    `json:"count,omitempty"`
	Message string `json:"message"`
}

// AlertList is GET /v1/alerts, critical first.
type AlertList struct {
	Alerts []Alert `json:"alerts"`
	// Omitted counts duplicate cool-downs beyond the listed ones.
	Omitted int `json:"omitted,omitempty"`
}

// Cooldown is a device in a duplicate-device cool-down.
type Cooldown struct {
	DeviceID  string `json:"device_id"`
	StartedMs int64  `json:"started_ms"`
	UntilMs   int64  `json:"until_ms"`
}

// PausedByOperator is a rollout's pause reason when an operator paused
// it; any other reason is an automatic pause.
const PausedByOperator = "paused by an operator"

// OperatorRecord is one state-changing admin request of GET
// /v1/operator-audit: who (token name and scope, source address), what
// (method, path, route, target ids) and the status answered.
type OperatorRecord struct {
	Seq         uint64   `json:"seq"`
	AtMs        int64    `json:"at_ms"`
	Operator    string   `json:"operator"`
	Scope       string   `json:"scope"`
	Remote      string   `json:"remote,omitempty"`
	Method      string   `json:"method"`
	Path        string   `json:"path"`
	Route       string   `json:"route,omitempty"`
	Targets     []string `json:"targets,omitempty"`
	TargetCount int      `json:"target_count,omitempty"`
	Status      int      `json:"status"`
	Message     string   `json:"message,omitempty"`
}

// OperatorAuditList is GET /v1/operator-audit: records newest first;
// NextBefore (when not 0) is the before= of the next page.
type OperatorAuditList struct {
	Records    []OperatorRecord `json:"records"`
	NextBefore uint64           `json:"next_before,omitempty"`
}

// DeviceSearchKeys are the filters of GET /v1/devices, in the order the
// console's form shows them; a saved device filter's query holds no
// other key.
var DeviceSearchKeys = []string{"id", "model", "fw", "app", "app_version", "group", "online", "offline_for", "blocked", "release", "stage"}

// DeviceFilter is a saved device search (/v1/device-filters): Query is
// the query of GET /v1/devices it stands for.
type DeviceFilter struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	CreatedBy string `json:"created_by,omitempty"`
	CreatedMs int64  `json:"created_ms"`
	UpdatedBy string `json:"updated_by,omitempty"`
	UpdatedMs int64  `json:"updated_ms"`
}

// DeviceFilterList is GET /v1/device-filters, in name order.
type DeviceFilterList struct {
	Filters []DeviceFilter `json:"filters"`
}

// DeviceFilterSave is the body of PUT /v1/device-filters/{name}.
type DeviceFilterSave struct {
	Query string `json:"query"`
}

// Bulk actions of POST /v1/devices/bulk.
const (
	BulkDisconnect   = "disconnect"
	BulkBlock        = "block"
	BulkUnblock      = "unblock"
	BulkGroupAdd     = "group_add"
	BulkRetryUpgrade = "retry_upgrade"
)

// BulkRequest is POST /v1/devices/bulk's body: an action on the devices
// of IDs, or on every device Filter (a GET /v1/devices query string
// without limit and cursor; "" is every device) matches, at most 10,000.
type BulkRequest struct {
	Action string   `json:"action"`
	IDs    []string `json:"ids,omitempty"`
	Filter *string  `json:"filter,omitempty"`
	// Group is group_add's group; Release retry_upgrade's release.
	Group   string `json:"group,omitempty"`
	Release string `json:"release,omitempty"`
}

// BulkResult answers a bulk action: how many devices it selected and how
// many succeeded and failed, with the first 100 failures.
type BulkResult struct {
	Action    string        `json:"action"`
	Matched   int           `json:"matched"`
	Succeeded int           `json:"succeeded"`
	Failed    int           `json:"failed"`
	Failures  []BulkFailure `json:"failures"`
}

// BulkFailure is one device a bulk action failed on.
type BulkFailure struct {
	ID      string    `json:"id"`
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

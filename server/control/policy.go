package control

import (
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// policy is what a service allows terminals, compiled from its config.
type policy struct {
	svc  config.Service // effective
	ops  []string       // ops terminals may ask for at all
	args []*regexp.Regexp
	acl  []config.ACLRule
	// inGroup evaluates the rules' groups (Options.Groups); nil: a rule
	// that names groups matches no device.
	inGroup func(group, device string) bool
}

func newPolicy(s config.Service) (*policy, error) {
	s = s.Effective()
	p := &policy{svc: s, ops: s.Ops, acl: s.ACL}
	for _, src := range s.ArgPatterns {
		re, err := config.CompileArgPattern(src)
		if err != nil {
			return nil, err
		}
		p.args = append(p.args, re)
	}
	return p, nil
}

// opName is the config name of wire op o.
func opName(o uint8) string {
	if o >= protocol.OpStart && o <= protocol.OpStatus {
		return config.AllOps[o-protocol.OpStart]
	}
	return ""
}

// allows reports whether a terminal with deviceID and model may ask for op.
func (p *policy) allows(deviceID, model, op string) bool {
	if !slices.Contains(p.ops, op) {
		return false
	}
	for _, r := range p.acl {
		if matchAny(r.Devices, deviceID) && matchAny(r.Models, model) && p.inAnyGroup(r.Groups, deviceID) &&
			(len(r.Ops) == 0 || slices.Contains(r.Ops, op)) {
			return true
		}
	}
	return false
}

// inAnyGroup: an empty list matches anything, else the device must be a
// member of one of the groups now.
func (p *policy) inAnyGroup(groups []string, device string) bool {
	if len(groups) == 0 {
		return true
	}
	if p.inGroup == nil {
		return false
	}
	for _, g := range groups {
		if p.inGroup(g, device) {
			return true
		}
	}
	return false
}

// refusal is the FORBIDDEN message for a request allows refused: whether
// the service does not offer op to terminals at all, or this device (or
// its model) is not in an ACL rule for it.
func (p *policy) refusal(op string) string {
	if !slices.Contains(p.ops, op) {
		return "operation " + op + " is not offered by this service"
	}
	return "this device may not " + op + " this service"
}

// matchAny: an empty list matches anything, else one pattern must match.
func matchAny(patterns []string, v string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, v); ok {
			return true
		}
	}
	return false
}

// checkArgs refuses terminal args the service does not accept: args only
// on START and RESTART, at most one per pattern, each matching its
// pattern as a whole. The message names the first bad one, never its
// value (it may be anything).
func (p *policy) checkArgs(op string, args []string) *protocol.Error {
	if len(args) == 0 {
		return nil
	}
	if op != config.OpStart && op != config.OpRestart {
		return &protocol.Error{Code: protocol.BadRequest, Message: "args are only accepted with start and restart"}
	}
	if len(p.args) == 0 {
		return &protocol.Error{Code: protocol.BadRequest, Message: "this service accepts no args"}
	}
	if len(args) > len(p.args) {
		return &protocol.Error{Code: protocol.BadRequest, Message: "too many args"}
	}
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			// execve cannot pass it; refusing here also keeps the exec
			// error (with the program's path) from the terminal.
			return &protocol.Error{Code: protocol.BadRequest, Message: "arg " + strconv.Itoa(i+1) + " contains NUL"}
		}
		if !p.args[i].MatchString(a) {
			return &protocol.Error{Code: protocol.BadRequest, Message: "arg " + strconv.Itoa(i+1) + " does not match its pattern"}
		}
	}
	return nil
}

// opTimeout is the service's own timeout for op.
func (p *policy) opTimeout(op string) (d int64) {
	switch op {
	case config.OpStart:
		return p.svc.StartTimeout.Milliseconds()
	case config.OpStop:
		return p.svc.StopTimeout.Milliseconds()
	case config.OpRestart:
		return p.svc.RestartTimeout.Milliseconds()
	}
	return 0
}

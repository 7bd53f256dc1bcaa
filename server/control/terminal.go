package control

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

// This file answers terminals' CONTROL requests: policy, request_id,
// the operation, and the audit record committed before each answer.

// unknownService is the audit's service name for every unknown id a
// terminal asks for, so refusals of made-up ids coalesce into one record
// per device (the id asked is in the record's message). It is not a valid
// service id, so it never mixes with a configured one.
const unknownService = "?"

// startedMessage marks the record committed before a process runs; the
// record of the outcome follows it.
const startedMessage = "started; outcome pending"

// minRetryMs is the least retry_after_ms of a request refused because its
// request_id could not be remembered.
const minRetryMs = 1000

// serveTerminal answers one CONTROL request. It runs on a worker and
// returns at once; the answer goes through reply when known.
func (c *Controller) serveTerminal(req *server.Request, reply func(protocol.Message, error)) {
	m := req.Msg.(*protocol.Control)
	start := c.now()
	op := opName(m.Op)
	rec := storage.AuditRecord{
		At: start.UnixMilli(), Source: storage.SourceTerminal,
		DeviceID: req.DeviceID, SessionID: req.SessionID, Remote: req.Remote,
		RequestID: m.RequestID, HasRequestID: m.HasRequestID,
		Service: m.ServiceID, Op: op, Args: m.Args,
	}
	send := func(a answer) {
		if a.err != nil {
			reply(nil, a.err)
			return
		}
		reply(a.msg, nil)
	}
	// The audit record is committed before the answer. A first attempt
	// that fails is retried off the worker pool: a sick store must not
	// hold workers through its retries. A refusal is stored coalesced and
	// without its args (see storage.Audit.AppendRefusal).
	write := func(a answer, refusal bool) {
		c.record(&rec, a, start)
		err := c.appendAudit(&rec, refusal)
		if err == nil {
			send(a)
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			a, _ := c.persist(&rec, a, err, refusal)
			send(a)
		}()
	}
	answerWith := func(a answer) { write(a, false) }
	// refuseWith records an answer to a request that ran nothing — a
	// refusal, or a repeat answered with the original's outcome (whose own
	// record holds the args) — coalesced, so neither can flood the audit.
	refuseWith := func(a answer) { write(a, true) }
	wait := c.requestWait(m.TimeoutMs)

	// Policy first: a request refused by it runs nothing and claims no
	// request_id, so refusals cannot use up the idempotency memory.
	p := c.pols[m.ServiceID]
	switch {
	case p == nil:
		rec.Service = unknownService
		rec.Message = "asked for " + auditName(m.ServiceID)
		refuseWith(refuse(protocol.NotFound, "unknown service"))
		return
	case !p.allows(req.DeviceID, req.Model, op):
		refuseWith(refuse(protocol.Forbidden, p.refusal(op)))
		return
	}
	if e := p.checkArgs(op, m.Args); e != nil {
		refuseWith(answer{err: e})
		return
	}

	var entry *idemEntry
	if m.HasRequestID {
		key := idemKey{device: req.DeviceID, id: m.RequestID}
		e, res, retryMs := c.idem.claim(key, m.ServiceID, op, m.Args, rec.At)
		switch res {
		case claimConflict:
			refuseWith(refuse(protocol.Conflict, "request_id already used for another request"))
			return
		case claimRepeat:
			rec.Message, rec.Repeat = "repeat of request_id", true
			c.follow(e, m.ServiceID, wait, refuseWith)
			return
		case claimFull:
			// A repeat of a request from before a restart is still
			// answered from the audit; anything else would run without
			// protection against a second run, so it is refused.
			if a, found := c.durableRepeat(req.DeviceID, m, op, rec.At); found {
				c.answerRepeat(&rec, a, refuseWith)
				return
			}
			c.m.requestIDsFull.Inc()
			refuseWith(answer{err: &protocol.Error{
				Code: protocol.Unavailable, Message: "too many request_ids remembered for this device",
				RetryAfterMs: uint64(max(retryMs, minRetryMs)),
			}})
			return
		}
		entry = e
		if a, found := c.durableRepeat(req.DeviceID, m, op, rec.At); found {
			c.idem.complete(entry, a)
			c.answerRepeat(&rec, a, refuseWith)
			return
		}
	}
	// done completes the request_id with an outcome; refused releases it
	// for a request that ran nothing, which a retry may run after all.
	done := func(a answer) { c.idem.complete(entry, a) }
	refused := func(a answer) {
		c.idem.release(entry, a)
		refuseWith(a)
	}

	if op == config.OpStatus {
		st, err := c.sup.Status(m.ServiceID)
		a := c.stateAnswer(st, err)
		done(a)
		answerWith(a)
		return
	}
	o, err := c.sup.DoStarted(m.ServiceID, op, m.Args, storage.SourceTerminal, c.startedRecord(rec, start))
	if err != nil {
		refused(c.doError(err))
		return
	}
	wait = min(wait, time.Duration(p.opTimeout(op))*time.Millisecond)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-o.Done():
			a := c.resultAnswer(o.Result())
			done(a)
			answerWith(a)
			return
		case <-t.C:
			answerWith(timeoutAnswer("operation still running", o.Current()))
		case <-c.stop:
			answerWith(timeoutAnswer("termd is stopping", o.Current()))
		}
		// Answered TIMEOUT: the operation goes on. Its outcome completes the
		// request_id entry (a repeat gets it) and is audited on its own.
		// The outcome is committed before a repeat can be answered with it.
		<-o.Done()
		a := c.resultAnswer(o.Result())
		late := rec
		late.Message = "completed after the request timed out"
		_, _ = c.commit(&late, a, start)
		done(a)
	}()
}

// answerRepeat answers a repeat found in the audit: the original's
// outcome, recorded as a repeat (it does not take over the request_id's
// index, and is coalesced like a refusal), or a refusal (a request_id
// reused for another request).
func (c *Controller) answerRepeat(rec *storage.AuditRecord, a answer, refuseWith func(answer)) {
	rec.Repeat = true
	if a.err == nil || a.err.Code != protocol.Conflict {
		rec.Message = "repeat of request_id (from the audit log)"
	}
	refuseWith(a)
}

// follow answers a repeat of e: at once if e's operation is done, else
// when it is, or TIMEOUT after wait. A waiting repeat holds a timer and a
// callback, not a goroutine.
func (c *Controller) follow(e *idemEntry, service string, wait time.Duration, answerWith func(answer)) {
	var once sync.Once
	c.wg.Add(1)
	finish := func(a answer) {
		once.Do(func() {
			defer c.wg.Done()
			answerWith(a)
		})
	}
	t := time.AfterFunc(wait, func() {
		st, _ := c.sup.Status(service)
		finish(timeoutAnswer("operation still running", st))
	})
	if !c.idem.onDone(e, func(a answer) { t.Stop(); finish(a) }) {
		t.Stop()
		finish(e.ans)
	}
}

// durableRepeat finds a request_id answered before a restart in the
// audit. Memory holds every request_id since this node opened, so only
// requests within request_id_window of the opening are looked up.
func (c *Controller) durableRepeat(device string, m *protocol.Control, op string, now int64) (answer, bool) {
	if c.audit == nil || now-c.openedMs >= c.ctl.RequestIDWindow.Milliseconds() {
		return answer{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	r, err := c.audit.AuditByRequest(ctx, device, m.RequestID, now-c.ctl.RequestIDWindow.Milliseconds())
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			c.log.Warn("request_id lookup in the audit failed", "device", device, "err", err)
		}
		return answer{}, false
	}
	if r.Service != m.ServiceID || r.Op != op || !slices.Equal(r.Args, m.Args) {
		return refuse(protocol.Conflict, "request_id already used for another request"), true
	}
	return recordAnswer(r), true
}

// startedRecord returns the supervisor's started hook for a request:
// before a process it starts runs, a record of it (state running, its
// pid) is committed, so a kill -9 of termd during the run leaves a trace,
// and a repeat of the request_id after a restart is answered with that
// run instead of starting another. An error keeps the process from
// running.
func (c *Controller) startedRecord(rec storage.AuditRecord, start time.Time) func(pid int) error {
	return func(pid int) error {
		r := rec
		r.Args = slices.Clone(rec.Args)
		r.DurationMs = c.now().Sub(start).Milliseconds()
		r.Status, r.State, r.PID, r.SinceMs = uint8(protocol.OK), protocol.StateRunning, pid, c.now().UnixMilli()
		r.Message = startedMessage
		err := c.appendAudit(&r, false)
		if err != nil {
			_, err = c.persist(&r, answer{}, err, false)
		}
		return err
	}
}

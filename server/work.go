package server

import (
	"context"
	"sync"
)

// workers is the bounded pool that runs domain work off the event loops.
// Its queue is bounded too: a full queue is reported to the caller, who
// answers UNAVAILABLE rather than letting a loop wait.
type workers struct {
	q    chan func(context.Context)
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func newWorkers(n, queue int) *workers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &workers{q: make(chan func(context.Context), queue), ctx: ctx, stop: cancel}
	w.wg.Add(n)
	for i := 0; i < n; i++ {
		go w.run()
	}
	return w
}

func (w *workers) run() {
	defer w.wg.Done()
	for {
		select {
		case fn := <-w.q:
			fn(w.ctx)
		case <-w.ctx.Done():
			return
		}
	}
}

// submit queues fn and reports false when the queue is full.
func (w *workers) submit(fn func(context.Context)) bool {
	select {
	case w.q <- fn:
		return true
	default:
		return false
	}
}

// close finishes queued work, then stops the pool.
func (w *workers) close() {
	for {
		select {
		case fn := <-w.q:
			fn(w.ctx)
			continue
		default:
		}
		break
	}
	w.stop()
	w.wg.Wait()
}

// depth is the number of queued requests.
func (w *workers) depth() int { return len(w.q) }

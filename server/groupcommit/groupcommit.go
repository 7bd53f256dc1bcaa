// Package groupcommit is the batching loop of termd's group committers
// (upgrade reports, scheduling): one goroutine takes the jobs waiting
// when the first arrives — up to a maximum — and commits them together,
// so many small durable writes cost one storage transaction, and a lone
// job waits for no one.
package groupcommit

import "time"

// Run takes jobs from jobs in batches and passes each batch to commit
// (the slice is reused: commit must not keep it), until stop is closed;
// then it commits what is still queued, for at most drainFor.
func Run[J any](jobs <-chan J, stop <-chan struct{}, max int, drainFor time.Duration, commit func([]J)) {
	batch := make([]J, 0, max)
	for {
		var j J
		select {
		case j = <-jobs:
		case <-stop:
			drain(jobs, batch, drainFor, commit)
			return
		}
		batch = append(batch[:0], j)
		batch = fill(jobs, batch)
		commit(batch)
	}
}

// fill adds the jobs waiting now, up to the batch's capacity.
func fill[J any](jobs <-chan J, batch []J) []J {
	for len(batch) < cap(batch) {
		select {
		case j := <-jobs:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// drain commits what is queued, bounded by drainFor.
func drain[J any](jobs <-chan J, batch []J, drainFor time.Duration, commit func([]J)) {
	deadline := time.Now().Add(drainFor)
	for time.Now().Before(deadline) {
		batch = fill(jobs, batch[:0])
		if len(batch) == 0 {
			return
		}
		commit(batch)
	}
}

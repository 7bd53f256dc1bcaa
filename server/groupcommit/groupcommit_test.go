package groupcommit

import (
	"sync"
	"testing"
	"time"
)

// Jobs waiting together are committed together (up to the maximum); a
// lone job is committed alone; what is queued at stop is drained.
func TestBatchesAndDrain(t *testing.T) {
	jobs := make(chan int, 100)
	stop := make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	release := make(chan struct{})
	commit := func(b []int) {
		mu.Lock()
		batches = append(batches, append([]int(nil), b...))
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release // hold the first commit while more jobs queue
		}
	}
	done := make(chan struct{})
	go func() { Run(jobs, stop, 4, time.Second, commit); close(done) }()
	jobs <- 0
	for len(jobs) != 0 { // the first job was taken alone
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 6; i++ {
		jobs <- i
	}
	close(release)
	for {
		mu.Lock()
		n := 0
		for _, b := range batches {
			n += len(b)
		}
		mu.Unlock()
		if n == 7 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	if len(batches) != 3 || len(batches[0]) != 1 || len(batches[1]) != 4 || len(batches[2]) != 2 {
		t.Fatalf("batches %v", batches)
	}
	mu.Unlock()
	// Queued at stop: drained.
	for i := 7; i < 10; i++ {
		jobs <- i
	}
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, b := range batches {
		total += len(b)
	}
	if total != 10 {
		t.Fatalf("%d jobs committed of 10: %v", total, batches)
	}
}

package service_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	kservice "github.com/kardianos/service"

	"github.com/tortie-net/tortie/windows/service"
	"github.com/tortie-net/tortie/windows/service/scmfake"
)

func fakeService(t *testing.T) *scmfake.Service {
	t.Helper()
	s, err := scmfake.New().New(nil, service.DefaultOptions("/pd").KardianosConfig("/pd"))
	if err != nil {
		t.Fatal(err)
	}
	return s.(*scmfake.Service)
}

type exits struct {
	mu    sync.Mutex
	codes []int
}

func (e *exits) exit(code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.codes = append(e.codes, code)
}

func (e *exits) get() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.codes...)
}

func TestProgram(t *testing.T) {
	tests := []struct {
		name      string
		body      func(ctx context.Context, release <-chan struct{}) error
		stop      func(p *service.Program, s kservice.Service) error
		wantErr   string
		wantExits []int
	}{
		{
			name:    "stop cancels the body",
			body:    func(ctx context.Context, _ <-chan struct{}) error { <-ctx.Done(); return ctx.Err() },
			stop:    (*service.Program).Stop,
			wantErr: "",
		},
		{
			name: "shutdown cancels the body",
			body: func(ctx context.Context, _ <-chan struct{}) error { <-ctx.Done(); return nil },
			stop: (*service.Program).Shutdown,
		},
		{
			name: "an error while stopping is returned",
			body: func(ctx context.Context, _ <-chan struct{}) error {
				<-ctx.Done()
				return errors.New("HNS cleanup failed")
			},
			stop:    (*service.Program).Stop,
			wantErr: "HNS cleanup failed",
		},
		{
			name:    "a body that ignores cancellation times out",
			body:    func(_ context.Context, release <-chan struct{}) error { <-release; return nil },
			stop:    (*service.Program).Stop,
			wantErr: "did not stop within 15s of the stop request",
		},
		{
			name:      "a failing body exits with 1",
			body:      func(context.Context, <-chan struct{}) error { return errors.New("boom") },
			wantExits: []int{service.ExitBodyFailed},
		},
		{
			name:      "a body that returns on its own exits with 3",
			body:      func(context.Context, <-chan struct{}) error { return nil },
			wantExits: []int{service.ExitBodyReturned},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				var ex exits
				p := &service.Program{Body: func(ctx context.Context) error { return tt.body(ctx, release) }, Exit: ex.exit}
				s := fakeService(t)
				if err := p.Start(s); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if tt.stop != nil {
					start := time.Now()
					err := tt.stop(p, s)
					if tt.wantErr == "" && err != nil {
						t.Fatalf("stop: %v", err)
					}
					if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
						t.Fatalf("stop = %v, want containing %q", err, tt.wantErr)
					}
					if tt.wantErr == "" && time.Since(start) != 0 {
						t.Errorf("stop waited %s for a body that returned at once", time.Since(start))
					}
				}
				close(release)
				synctest.Wait()
				if got := ex.get(); len(got) != len(tt.wantExits) || (len(got) > 0 && got[0] != tt.wantExits[0]) {
					t.Errorf("exit codes = %v, want %v", got, tt.wantExits)
				}
			})
		})
	}
}

func TestProgramStartTwiceAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		runs := 0
		p := &service.Program{Body: func(ctx context.Context) error { runs++; <-ctx.Done(); return nil }, Exit: func(int) { t.Error("unexpected exit") }}
		s := fakeService(t)
		if err := p.Start(s); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(s); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("second Start = %v", err)
		}
		if err := p.Stop(s); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(s); err != nil {
			t.Fatalf("Start after Stop: %v", err)
		}
		if err := p.Stop(s); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(s); err != nil {
			t.Fatalf("Stop when stopped: %v", err)
		}
		if runs != 2 {
			t.Errorf("body ran %d times, want 2", runs)
		}
		if err := (&service.Program{}).Start(s); err == nil {
			t.Error("Start without Body and Exit succeeded")
		}
	})
}

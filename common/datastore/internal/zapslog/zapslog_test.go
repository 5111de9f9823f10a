package zapslog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestBridge(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), zap.WarnLevel)
	l.Info("dropped: below the minimum")
	l.Named("raft").With(zap.String("member", "m1")).Warn("slow fdatasync", zap.Duration("took", 1500000000), zap.Int("n", 3))
	l.Error("failed", zap.Error(errTest{}))
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="slow fdatasync" member=m1 n=3 took=1.5s logger=raft`,
		`level=ERROR msg=failed error=boom`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("an entry below the minimum level was written:\n%s", out)
	}
	New(nil, zap.DebugLevel).Error("nowhere") // a nil logger discards
}

type errTest struct{}

func (errTest) Error() string { return "boom" }

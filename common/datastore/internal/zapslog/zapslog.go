// Package zapslog lets etcd's libraries, which log through zap, log through a *slog.Logger instead, so
// that tortie has one log stream with one format and level.
package zapslog

import (
	"context"
	"log/slog"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a zap logger that writes entries at min or above to l. A nil l discards everything.
func New(l *slog.Logger, min zapcore.Level) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return zap.New(&core{l: l, min: min})
}

type core struct {
	l     *slog.Logger
	min   zapcore.Level
	attrs []slog.Attr
}

func (c *core) Enabled(lvl zapcore.Level) bool {
	return lvl >= c.min && c.l.Enabled(context.Background(), slogLevel(lvl))
}

func (c *core) With(fields []zapcore.Field) zapcore.Core {
	return &core{l: c.l, min: c.min, attrs: append(slices.Clip(c.attrs), attrs(fields)...)}
}

func (c *core) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c *core) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	as := append(slices.Clip(c.attrs), attrs(fields)...)
	if ent.LoggerName != "" {
		as = append(as, slog.String("logger", ent.LoggerName))
	}
	//nolint:sloglint // the message is etcd's, forwarded as is
	c.l.LogAttrs(context.Background(), slogLevel(ent.Level), ent.Message, as...)
	return nil
}

func (c *core) Sync() error { return nil }

func attrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		out = append(out, slog.Any(k, v))
	}
	slices.SortFunc(out, func(a, b slog.Attr) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

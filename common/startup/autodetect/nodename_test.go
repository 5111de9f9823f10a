package autodetect

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNodeName(t *testing.T) {
	type want struct{ Name, Source string }
	tests := []struct {
		name     string
		env      map[string]string
		files    map[string]string // path → content; absent = not exist
		fileErr  map[string]error
		hostname string
		hostErr  error
		want     want
		wantErr  []string
	}{
		{name: "NODENAME wins over everything", env: map[string]string{"NODENAME": " Node-A ", "HOSTNAME": "h"},
			files: map[string]string{CalicoNodeNameFile: "stored"}, hostname: "os",
			want: want{"Node-A", "env: NODENAME"}},
		{name: "TORTIE_NODENAME wins over NODENAME", env: map[string]string{"NODENAME": "a", "TORTIE_NODENAME": "b"},
			want: want{"b", "env: TORTIE_NODENAME"}},
		{name: "calico file", env: map[string]string{"HOSTNAME": "h"}, files: map[string]string{CalicoNodeNameFile: "stored-node\n"},
			want: want{"stored-node", "file: /var/lib/calico/nodename"}},
		{name: "tortie file first", files: map[string]string{CalicoNodeNameFile: "calico", TortieNodeNameFile: "tortie"},
			want: want{"tortie", "file: /var/lib/tortie/nodename"}},
		{name: "empty tortie file falls through", files: map[string]string{CalicoNodeNameFile: "calico", TortieNodeNameFile: " \n"},
			want: want{"calico", "file: /var/lib/calico/nodename"}},
		{name: "CALICO_NODENAME_FILE moves the file", env: map[string]string{"CALICO_NODENAME_FILE": "/etc/nn"},
			files: map[string]string{CalicoNodeNameFile: "default-place", "/etc/nn": "moved"},
			want:  want{"moved", "file: /etc/nn"}},
		{name: "TORTIE_NODENAME_FILE moves tortie's file", env: map[string]string{"TORTIE_NODENAME_FILE": "/etc/tn"},
			files: map[string]string{"/etc/tn": "t", CalicoNodeNameFile: "c"},
			want:  want{"t", "file: /etc/tn"}},
		{name: "unreadable file is an error", fileErr: map[string]error{CalicoNodeNameFile: fs.ErrPermission}, hostname: "os",
			wantErr: []string{"/var/lib/calico/nodename", "permission denied", "CALICO_NODENAME_FILE", "NODENAME"}},
		{name: "HOSTNAME lower-cased", env: map[string]string{"HOSTNAME": " Worker-1.Example.COM "}, hostname: "os",
			want: want{"worker-1.example.com", "HOSTNAME"}},
		{name: "OS hostname lower-cased", hostname: "MyHost\n",
			want: want{"myhost", "os-hostname"}},
		{name: "OS hostname fails", hostErr: errors.New("uts broken"),
			wantErr: []string{"uts broken", "set NODENAME"}},
		{name: "everything empty", hostname: "  ",
			wantErr: []string{"all empty", "set NODENAME"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var read []string
			readFile := func(p string) ([]byte, error) {
				read = append(read, p)
				if err := tt.fileErr[p]; err != nil {
					return nil, &fs.PathError{Op: "open", Path: p, Err: err}
				}
				c, ok := tt.files[p]
				if !ok {
					return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
				}
				return []byte(c), nil
			}
			hostname := func() (string, error) { return tt.hostname, tt.hostErr }
			name, source, err := NodeName(envOf(tt.env), readFile, hostname)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("NodeName = %q (%s), want an error", name, source)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("NodeName: %v (read %v)", err, read)
			}
			if diff := cmp.Diff(tt.want, want{name, source}); diff != "" {
				t.Errorf("NodeName (-want +got):\n%s", diff)
			}
		})
	}
}

//go:build linux

package lab

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckWindowsNodes(t *testing.T) {
	base := UpOptions{Nodes: 2, PodCIDR: DefaultPodCIDR, Underlay: DefaultUnderlay, Encap: "vxlan", Datastore: "embedded",
		Dataplane: "auto", NodeBin: "n", CNIBin: "c", LabBin: "l", WinNodeBin: "wn", WinCNIBin: "wc"}
	for _, tc := range []struct {
		name    string
		mod     func(*UpOptions)
		wantErr string
	}{
		{name: "none", mod: func(o *UpOptions) { o.WindowsNodes, o.WinNodeBin, o.WinCNIBin = 0, "", "" }},
		{name: "one over vxlan", mod: func(o *UpOptions) { o.WindowsNodes = 1 }},
		{name: "negative", mod: func(o *UpOptions) { o.WindowsNodes = -1 }, wantErr: "--windows-nodes=-1"},
		{name: "too many", mod: func(o *UpOptions) { o.WindowsNodes = MaxNodes - 1 }, wantErr: "at most 50 nodes"},
		{name: "ipip", mod: func(o *UpOptions) { o.WindowsNodes, o.Encap = 1, "ipip" }, wantErr: "use --encap vxlan"},
		{name: "crosssubnet", mod: func(o *UpOptions) { o.WindowsNodes, o.Encap = 1, "vxlan-crosssubnet" }, wantErr: "use --encap vxlan"},
		{name: "kubernetes datastore", mod: func(o *UpOptions) { o.WindowsNodes, o.Datastore, o.KubeAPIServerBin = 1, "kubernetes", "/bin/true" }, wantErr: "--datastore kubernetes: not supported"},
		{name: "no binaries", mod: func(o *UpOptions) { o.WindowsNodes, o.WinCNIBin = 1, "" }, wantErr: "tortie-cni-fakehns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			err := o.Check()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Check() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestVXLANFrame: the frames the probe sends decapsulate to what was put in, with valid IPv4 and
// TCP/UDP checksums (a kernel drops a packet whose checksum is wrong).
func TestVXLANFrame(t *testing.T) {
	src, dst := netip.MustParseAddr("10.244.7.3"), netip.MustParseAddr("10.244.9.1")
	smac, _ := net.ParseMAC("00:15:5d:00:00:02")
	dmac, _ := net.ParseMAC("66:ee:11:22:33:44")
	for _, tc := range []struct {
		name    string
		proto   uint8
		payload []byte
	}{
		{name: "TCP SYN", proto: 6},
		{name: "UDP", proto: 17, payload: []byte("probe")},
		{name: "UDP odd length", proto: 17, payload: []byte("odd")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := vxlanFrame(4096, dmac, smac, src, dst, tc.proto, 40001, 80, tc.payload)
			c, ok := decapsulate(f)
			if !ok {
				t.Fatalf("decapsulate(%x) failed", f)
			}
			want := &capture{vni: 4096, dstMAC: dmac, srcMAC: smac, src: src, dst: dst, proto: tc.proto, sport: 40001, dport: 80}
			if tc.proto == 6 {
				want.tcpFlags = 0x02
			} else {
				want.payload = tc.payload
			}
			if diff := cmp.Diff(want, c, cmp.AllowUnexported(capture{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b net.HardwareAddr) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Errorf("decapsulated (-want +got):\n%s", diff)
			}
			ip := f[8+14:]
			if s := checksum(ip[:20]); s != 0 {
				t.Errorf("IPv4 header checksum does not verify: %#04x", s)
			}
			l4 := ip[20:]
			pseudo := append(append(append([]byte{}, ip[12:20]...), 0, tc.proto, byte(len(l4)>>8), byte(len(l4))), l4...)
			if s := checksum(pseudo); s != 0 {
				t.Errorf("L4 checksum does not verify: %#04x", s)
			}
			if got := binary.BigEndian.Uint16(ip[2:4]); int(got) != len(ip) {
				t.Errorf("IPv4 total length %d, frame has %d", got, len(ip))
			}
		})
	}
	if _, ok := decapsulate([]byte{0x08, 0, 0, 0, 0, 0x10, 0, 0}); ok {
		t.Error("a truncated frame decapsulated")
	}
}

package notify

import (
	"net"
	"path/filepath"
	"testing"
)

// The notifier speaks the real protocol: a datagram on $NOTIFY_SOCKET.
func TestSystemdSendsOnNotifySocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	var n Notifier = Systemd{}
	if err := n.Status("attaching ENI 2/3"); err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	for _, want := range []string{"STATUS=attaching ENI 2/3", "READY=1"} {
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:k]); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestSystemdOutsideSystemdIsSilent(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := (Systemd{}).Ready(); err != nil {
		t.Error(err)
	}
}

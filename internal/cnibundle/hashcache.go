package cnibundle

import (
	"os"
	"sync"
	"time"
)

// RacyWindow is how long after a file's last change (its ctime) its hash is
// not remembered. The kernel stamps ctime from a coarse clock (a tick, up to
// 10 ms), and ext3 or ext4 with 128-byte inodes stamp whole seconds, so a
// write just after the hash could keep the same stamp; past this window any
// later write gets a later one.
const RacyWindow = 2 * time.Second

// HashCache remembers the sha256 of the files a bundle hashes, each under
// the file's identity and stat (device, inode, size, mode, mtime and ctime
// in ns), so a long-running caller, the watcher, reads a file again only
// when it changed: a replaced file has another inode, a truncated one
// another size, and a write or chmod in place moves ctime, which a user
// cannot set back (os.Chtimes restores mtime only). The zero value is ready;
// it is safe for concurrent use.
type HashCache struct {
	// Now is the clock RacyWindow is measured on; nil is time.Now.
	Now func() time.Time

	// open opens a file to hash; nil is os.Open (tests count reads here).
	open func(name string) (*os.File, error)

	mu    sync.Mutex
	known map[string]cachedSum
}

type cachedSum struct {
	id  fileID
	sum string
}

// fileID is what the kernel says of a file that changes when its content can.
type fileID struct {
	dev, ino     uint64
	size         int64
	mode         os.FileMode
	mtime, ctime int64
}

// lookup returns the remembered sum of the file at the real path p when it
// is still the same file; a nil cache remembers nothing.
func (c *HashCache) lookup(p string) (string, bool) {
	if c == nil {
		return "", false
	}
	info, err := os.Stat(p)
	if err != nil {
		return "", false
	}
	id, ok := identify(info)
	if !ok {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.known[p]
	if !ok || k.id != id {
		return "", false
	}
	return k.sum, true
}

// remember records sum for the file at p as it was before (before) and
// after (after) it was read: not when it changed while being read, nor
// within RacyWindow of its last change.
func (c *HashCache) remember(p string, before, after os.FileInfo, sum string) {
	if c == nil {
		return
	}
	id, ok := identify(before)
	if !ok {
		return
	}
	if again, ok := identify(after); !ok || again != id {
		return
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if now().Sub(time.Unix(0, id.ctime)) < RacyWindow {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]cachedSum{}
	}
	c.known[p] = cachedSum{id: id, sum: sum}
}

func (c *HashCache) openFile(p string) (*os.File, error) {
	if c == nil || c.open == nil {
		return os.Open(p)
	}
	return c.open(p)
}

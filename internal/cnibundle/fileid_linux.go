package cnibundle

import (
	"os"
	"syscall"
)

func identify(info os.FileInfo) (fileID, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{
		dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mode: info.Mode(),
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, true
}

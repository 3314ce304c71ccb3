package nodeprep

import (
	"embed"
	"fmt"
	"strings"
	"text/template"
)

// The shell each stage runs is kept in scripts/ as text/template files, so it
// reads (and is checked by `sh -n`) as shell. Every value reaches a script
// through q or qall: templates never splice a raw string into a command.
//
//go:embed scripts/*.sh
var scriptFiles embed.FS

// scriptData is everything a template may use: the checked config, what stage 0
// learnt about the target, and the remote paths shared with the agent.
type scriptData struct {
	Cfg     *Config
	Family  Family
	Kernels []string
	// Local checksums of the uploaded agent and unit, checked on the target.
	BinarySHA, ServiceSHA string
	// Names of the CNI bundle's files, without the manifest.
	Bundle []string
	// Units installed from the agent module, besides the configured one.
	Units []unitFile
	// Arguments the image must boot with.
	KernelArgs []string
	// Kernels that get write-combining vfio-pci, each with its patch.
	VfioWC []vfioWCKernel

	ServicePath, ServiceName                string
	RefreshPathName, RefreshDropIn          string
	WatchServiceName, WatchDropIn           string
	CNIRoot, CNIVersionDir, CNICurrentPath  string
	CurrentLink, SumsFile                   string
	IgbUioRecord, ModulesLoad, ModprobeConf string
	VfioWCRecord, VfioWCDir                 string
	UdevRulesDir                            string
}

// Staged is the path of name in the staging directory.
func (d scriptData) Staged(name string) string { return stagedPath(d.Cfg.StagingDir, name) }

func stagedPath(stagingDir, name string) string { return stagingDir + "/" + name }

func newScriptData(cfg *Config, tgt target, bundle []cniFile, units []unitFile, binarySHA, serviceSHA string) scriptData {
	names := make([]string, len(bundle))
	for i, f := range bundle {
		names[i] = f.Name
	}
	return scriptData{
		Cfg:              cfg,
		Family:           tgt.family,
		Kernels:          tgt.kernels,
		BinarySHA:        binarySHA,
		ServiceSHA:       serviceSHA,
		Bundle:           names,
		Units:            units,
		KernelArgs:       cfg.kernelArgs(tgt.arch).Strings(),
		ServicePath:      servicePath,
		ServiceName:      serviceName,
		RefreshPathName:  refreshPathName,
		RefreshDropIn:    refreshDropIn,
		WatchServiceName: watchServiceName,
		WatchDropIn:      watchDropIn,
		CNIRoot:          cniRoot,
		CNIVersionDir:    cniRoot + "/" + cfg.CNIVersion,
		CNICurrentPath:   cniRoot + "/" + cniCurrent,
		CurrentLink:      cniCurrent,
		SumsFile:         sumsFile,
		IgbUioRecord:     igbUioRecord,
		VfioWCRecord:     vfioWCRecord,
		VfioWCDir:        vfioWCDir,
		ModulesLoad:      modulesLoad,
		ModprobeConf:     modprobeConf,
		UdevRulesDir:     udevRulesDir,
	}
}

// renderScript executes scripts/<name> with data. A script may include
// another by its file name ({{template "kernel_headers.sh" .}}).
func renderScript(name string, data scriptData) (string, error) {
	t, err := template.New(name).
		Funcs(template.FuncMap{"q": q, "qall": qall, "join": strings.Join}).
		ParseFS(scriptFiles, "scripts/*.sh")
	if err != nil {
		return "", fmt.Errorf("parsing scripts: %w", err)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("rendering script %s: %w", name, err)
	}
	return b.String(), nil
}

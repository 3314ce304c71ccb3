package bootstrap

// Cloud holds the AWS clients the ENI steps use. Its fields are set by the
// agent from its endpoint flags; see enis.go.
type Cloud struct{}

module github.com/slurmrun/slurmrun

go 1.26.8

require (
	github.com/containerd/console v1.0.5
	github.com/kelseyhightower/envconfig v1.4.0
	github.com/opencontainers/runtime-spec v1.3.0
	github.com/rogpeppe/go-internal v1.16.0
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.45.0
	mvdan.cc/sh/v3 v3.14.1
)

require golang.org/x/tools v0.38.0 // indirect

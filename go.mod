module github.com/slurmrun/slurmrun

go 1.26.8

require (
	github.com/containerd/console v1.0.5 // indirect
	github.com/kelseyhightower/envconfig v1.4.0 // indirect
	github.com/opencontainers/runtime-spec v1.3.0 // indirect
	github.com/sirupsen/logrus v1.10.2 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.45.0 // indirect
	mvdan.cc/sh/v3 v3.14.1 // indirect
)

// Package deploy holds what an operator installs: systemd units, the example
// configuration, sample topology and templates, and the local cluster
// scripts. Its tests check those files (systemd-analyze verify, the example
// configuration through the real config loader).
package deploy

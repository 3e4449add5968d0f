package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/causeway/causeway/drivers/alertmanager"
	"github.com/causeway/causeway/notifier/webhook"
)

// maxSecretFile bounds what check-config reads of one secret file.
const maxSecretFile = 1 << 20

// secretFile is a secret *_file the configuration names: its YAML key, the
// file, and what checks the secret it holds (nil: any, not empty).
type secretFile struct {
	key, file string
	parse     func(string) error
}

// secretFiles lists the secret files the daemons would read with this
// configuration, in the order of the file. A CA bundle (ca_file) is no
// secret.
func (cfg *fileConfig) secretFiles() []secretFile {
	var fs []secretFile
	add := func(key, file string, parse func(string) error) {
		if file != "" {
			fs = append(fs, secretFile{key, file, parse})
		}
	}
	add("database.dsn_file", cfg.Database.DSNFile, nil)
	add("bus.url_file", cfg.Bus.URLFile, nil)
	add("processor.raft.tls.key_file", cfg.Processor.Raft.TLS.KeyFile, nil)
	add("processor.api.tls.key_file", cfg.Processor.API.TLS.KeyFile, nil)
	for i, t := range cfg.Processor.API.Tokens {
		add(fmt.Sprintf("processor.api.tokens[%d].token_file", i), t.TokenFile, nil)
	}
	if a := cfg.Drivers.Alertmanager; a != nil {
		add("drivers.alertmanager.token_file", a.TokenFile, nil)
	}
	l := cfg.Listener
	if l.Alertmanager != nil || l.Events != nil {
		for i, t := range l.Server.Auth.Tokens {
			add(fmt.Sprintf("listener.server.auth.tokens[%d].token_file", i), t.TokenFile, nil)
		}
		add("listener.server.auth.password_file", l.Server.Auth.PasswordFile, nil)
		add("listener.server.tls.key_file", l.Server.TLS.KeyFile, nil)
	}
	add("notifier.dsn_file", cfg.Notifier.DSNFile, nil)
	names := make([]string, 0, len(cfg.Notifier.Secrets))
	for name := range cfg.Notifier.Secrets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		add("notifier.secrets."+name+".file", cfg.Notifier.Secrets[name].File, func(v string) error {
			_, err := webhook.ParseSecret(v)
			return err
		})
	}
	return fs
}

// checkFiles opens every *_file the daemons would read with this
// configuration, and reports each one missing, unreadable, empty, or that
// other users may read, by its YAML path. It never reports what a file
// holds. database.dsn_file and bus.url_file are read by loadConfig
// already.
func (cfg *fileConfig) checkFiles() error {
	var errs []error
	for _, f := range cfg.secretFiles() {
		if err := looseSecret(f.file); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
		if f.key == "database.dsn_file" || f.key == "bus.url_file" {
			continue
		}
		v, err := readSecretFile(f.file)
		if err == nil && f.parse != nil {
			err = f.parse(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
	}
	if a := cfg.Drivers.Alertmanager; a != nil && a.CAFile != "" {
		if _, err := alertmanager.LoadCAFile(a.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("drivers.alertmanager.%w", err))
		}
	}
	return errors.Join(errs...)
}

// looseSecret reports a secret file that users other than its owner and
// group may read or write: its secret is no longer one (the README's
// convention is 0640, root:causeway). A file that cannot be looked at is
// no error here: reading it reports that.
func looseSecret(file string) error {
	if perm, loose := loosePerm(file); loose {
		return fmt.Errorf("%s is mode %04o: every user of the host may read or write it; make it 0640 (owned root:causeway) or 0600", file, perm)
	}
	return nil
}

// loosePerm is the permissions of file, and whether others than its owner
// and group have any (false when it cannot be looked at, or is no regular
// file).
func loosePerm(file string) (os.FileMode, bool) {
	fi, err := os.Stat(file)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Mode().Perm(), fi.Mode().Perm()&0o007 != 0
}

// warnLooseSecrets logs a warning for each secret file of files, under the
// YAML sections given (the ones the daemon reads), that other users may
// read or write. The daemon goes on: refusing to start would take down a
// service that ran with them, on an upgrade.
func warnLooseSecrets(log *slog.Logger, files []secretFile, sections ...string) {
	for _, f := range files {
		section, _, _ := strings.Cut(f.key, ".")
		if !slices.Contains(sections, section) {
			continue
		}
		if perm, loose := loosePerm(f.file); loose {
			log.Warn("secret file readable by every user of the host: make it 0640 (owned root:causeway) or 0600",
				"key", f.key, "file", f.file, "mode", fmt.Sprintf("%04o", perm))
		}
	}
}

// readSecretFile is the trimmed content of a secret file, which must not be
// empty. Its errors name the file, never its content.
func readSecretFile(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile))
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return v, nil
}

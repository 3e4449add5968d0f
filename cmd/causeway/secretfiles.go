package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/causeway/causeway/drivers/alertmanager"
	"github.com/causeway/causeway/notifier/webhook"
)

// maxSecretFile bounds what check-config reads of one secret file.
const maxSecretFile = 1 << 20

// checkFiles opens every *_file the daemons would read with this
// configuration, and reports each one missing, unreadable or empty, by its
// YAML path. It never reports what a file holds. database.dsn_file and
// bus.url_file are read by loadConfig already.
func (cfg *fileConfig) checkFiles() error {
	var errs []error
	check := func(path, file string, parse func(string) error) {
		if file == "" {
			return
		}
		v, err := readSecretFile(file)
		if err == nil && parse != nil {
			err = parse(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	for i, t := range cfg.Processor.API.Tokens {
		check(fmt.Sprintf("processor.api.tokens[%d].token_file", i), t.TokenFile, nil)
	}
	if a := cfg.Drivers.Alertmanager; a != nil {
		check("drivers.alertmanager.token_file", a.TokenFile, nil)
		if a.CAFile != "" {
			if _, err := alertmanager.LoadCAFile(a.CAFile); err != nil {
				errs = append(errs, fmt.Errorf("drivers.alertmanager.%w", err))
			}
		}
	}
	l := cfg.Listener
	if l.Alertmanager != nil || l.Events != nil {
		for i, t := range l.Server.Auth.Tokens {
			check(fmt.Sprintf("listener.server.auth.tokens[%d].token_file", i), t.TokenFile, nil)
		}
		check("listener.server.auth.password_file", l.Server.Auth.PasswordFile, nil)
	}
	check("notifier.dsn_file", cfg.Notifier.DSNFile, nil)
	names := make([]string, 0, len(cfg.Notifier.Secrets))
	for name := range cfg.Notifier.Secrets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		check("notifier.secrets."+name+".file", cfg.Notifier.Secrets[name].File, func(v string) error {
			_, err := webhook.ParseSecret(v)
			return err
		})
	}
	return errors.Join(errs...)
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

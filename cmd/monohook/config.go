package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/pflag"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/rulestore"
)

// secretFileName is where a generated webhook secret is kept in the data
// directory. The file holds the secret alone.
const secretFileName = "webhook-secret"

// storeFlags locate the rules.
type storeFlags struct {
	dataDir  string
	url      string
	prefix   string
	v2prefix string
}

func (f *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.dataDir, "data-dir", "./monohook-data", "directory for local state: the generated webhook secret, and the rules unless --store says otherwise")
	fs.StringVar(&f.url, "store", "", "rule store as a gocloud blob URL: file:///path, s3://bucket?region=…, mem:// (default: file:// of --data-dir)")
	fs.StringVar(&f.prefix, "prefix", rulestore.DefaultPrefix, "key prefix of the seed rule documents in the store")
	fs.StringVar(&f.v2prefix, "v2-prefix", rulestore.DefaultV2Prefix, "key prefix of the v2 rule documents (YAML or JSON) in the store")
}

// storeURL is --store, or the data directory as a file:// bucket.
func (f *storeFlags) storeURL() (string, error) {
	if f.url != "" {
		return f.url, nil
	}
	abs, err := filepath.Abs(f.dataDir)
	if err != nil {
		return "", fmt.Errorf("data directory %s: %w", f.dataDir, err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "create_dir=true&metadata=skip"}
	return u.String(), nil
}

// open opens the rule store, creating the data directory's bucket if it
// is missing (serve, rules put).
func (f *storeFlags) open(ctx context.Context, log *slog.Logger) (*rulestore.Store, string, error) {
	u, err := f.storeURL()
	if err != nil {
		return nil, "", err
	}
	if err := checkRegion(ctx, u); err != nil {
		return nil, "", err
	}
	s, err := rulestore.Open(ctx, u, f.prefix, log)
	if err != nil {
		return nil, "", err
	}
	s.SetV2Prefix(f.v2prefix)
	where := u
	if i := strings.IndexByte(where, '?'); i >= 0 {
		where = where[:i]
	}
	return s, where + " (prefix " + f.prefix + "/)", nil
}

// openExisting opens the rule store of a command that reads it, or
// changes what is there: a missing data directory is an error naming
// where it looked, not a new empty store.
func (f *storeFlags) openExisting(ctx context.Context, log *slog.Logger) (*rulestore.Store, string, error) {
	if f.url == "" {
		if err := mustExist(f.dataDir, "--store URL for a rule store elsewhere"); err != nil {
			return nil, "", err
		}
	}
	return f.open(ctx, log)
}

// mustExist checks that the data directory is there, so that a command
// run from the wrong directory, or without the --data-dir serve was given,
// says so instead of creating an empty one (and finding nothing in it).
func mustExist(dataDir, orElse string) error {
	st, err := os.Stat(dataDir)
	if err == nil && st.IsDir() {
		return nil
	}
	abs, aerr := filepath.Abs(dataDir)
	if aerr != nil {
		abs = dataDir
	}
	if err == nil {
		return fmt.Errorf("data directory %s is not a directory: pass --data-dir with the directory serve uses (or set MONOHOOK_DATA_DIR), or %s", abs, orElse)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("data directory: %w", err)
	}
	return fmt.Errorf("no data directory at %s: pass --data-dir with the directory serve uses (or set MONOHOOK_DATA_DIR), or %s", abs, orElse)
}

// noRegion is the hint for an AWS client without a region, which the SDK
// reports only on the first call, as "Invalid region: region was not a
// valid DNS name".
const noRegion = "set AWS_REGION (or AWS_PROFILE naming a profile with a region)"

// checkRegion refuses an s3:// store for which the AWS SDK would find no
// region, resolving it as gocloud's s3blob does: the URL's region, else
// the SDK's environment and shared configuration (for the URL's profile).
func checkRegion(ctx context.Context, storeURL string) error {
	if !strings.HasPrefix(storeURL, "s3://") {
		return nil
	}
	u, err := url.Parse(storeURL)
	if err != nil {
		return fmt.Errorf("rule store URL: %w", err)
	}
	q := u.Query()
	if q.Get("region") != "" {
		return nil
	}
	var opts []func(*config.LoadOptions) error
	if p := q.Get("profile"); p != "" {
		opts = append(opts, config.WithSharedConfigProfile(p))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("AWS configuration for the rule store: %w", err)
	}
	if cfg.Region == "" {
		return fmt.Errorf("no AWS region for the rule store s3://%s: add ?region=… to --store, or %s", u.Host, noRegion)
	}
	return nil
}

// secretFlags configure the webhook secrets.
type secretFlags struct {
	secrets    string
	secretFile string
}

func (f *secretFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.secrets, "secret", "", "webhook secret; several comma-separated during a rotation (default: read or create "+secretFileName+" in --data-dir)")
	fs.StringVar(&f.secretFile, "secret-file", "", "file holding the webhook secret(s), one per line or comma-separated")
}

// resolve returns the configured secrets and says where they came from.
// With neither flag set it reads the data directory's secret file, creating
// one with a strong random secret when create is true.
func (f *secretFlags) resolve(dataDir string, create bool) (secrets []string, source string, err error) {
	switch {
	case f.secrets != "":
		return splitSecrets(f.secrets), "--secret", nil
	case f.secretFile != "":
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return nil, "", fmt.Errorf("read secret file: %w", err)
		}
		s := splitSecrets(string(b))
		if len(s) == 0 {
			return nil, "", fmt.Errorf("secret file %s is empty", f.secretFile)
		}
		return s, f.secretFile, nil
	}
	path := filepath.Join(dataDir, secretFileName)
	b, err := os.ReadFile(path)
	if err == nil {
		s := splitSecrets(string(b))
		if len(s) == 0 {
			return nil, "", fmt.Errorf("secret file %s is empty", path)
		}
		return s, path, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("read secret file: %w", err)
	}
	if !create {
		return nil, "", fmt.Errorf("no webhook secret: give --secret or --secret-file, or run 'monohook serve' once to create %s", path)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create data directory: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", fmt.Errorf("generate secret: %w", err)
	}
	secret := hex.EncodeToString(raw)
	// O_EXCL: two processes starting at once must not each write their own.
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return f.resolve(dataDir, false)
	}
	if err != nil {
		return nil, "", fmt.Errorf("create secret file: %w", err)
	}
	if _, err := io.WriteString(fh, secret+"\n"); err != nil {
		fh.Close()
		return nil, "", fmt.Errorf("write secret file: %w", err)
	}
	if err := fh.Close(); err != nil {
		return nil, "", fmt.Errorf("write secret file: %w", err)
	}
	return []string{secret}, path + " (generated)", nil
}

func splitSecrets(s string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// logFlags configure logging.
type logFlags struct {
	format string
	level  string
}

func (f *logFlags) register(fs *pflag.FlagSet, level string) {
	fs.StringVar(&f.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.level, "log-level", level, "least severe level logged: debug, info, warn or error")
}

func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", f.level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch f.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", f.format)
}

// dbFlags locate the database of deliveries and jobs.
type dbFlags struct {
	url string
}

func (f *dbFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "database", "", "deliveries and jobs: postgres://… for several replicas (default: SQLite file monohook.db in --data-dir)")
}

// dbFileName is the SQLite database in the data directory.
const dbFileName = "monohook.db"

func (f *dbFlags) open(ctx context.Context, dataDir string) (*deliveries.DB, error) {
	u := f.url
	if u == "" {
		u = "sqlite://" + filepath.Join(dataDir, dbFileName)
	}
	return deliveries.OpenDB(ctx, u)
}

// openExisting opens the database of a command that reads it or adds to
// what is there (deliveries): one serve has not created (a missing SQLite
// file, a PostgreSQL database without monohook's tables) is an error
// naming where it looked, not a new empty database.
func (f *dbFlags) openExisting(ctx context.Context, dataDir string) (*deliveries.DB, error) {
	u := f.url
	if u == "" {
		if err := mustExist(dataDir, "--database postgres://… (MONOHOOK_DATABASE) for a shared database"); err != nil {
			return nil, err
		}
		abs, err := filepath.Abs(filepath.Join(dataDir, dbFileName))
		if err != nil {
			return nil, fmt.Errorf("data directory %s: %w", dataDir, err)
		}
		u = "sqlite://" + abs
	}
	if err := deliveries.Initialized(ctx, u); err != nil {
		if errors.Is(err, deliveries.ErrNoDatabase) {
			return nil, fmt.Errorf("%w (serve creates it when it starts): pass the --data-dir or the --database serve uses (MONOHOOK_DATA_DIR, MONOHOOK_DATABASE)", err)
		}
		return nil, err
	}
	return deliveries.OpenDB(ctx, u)
}

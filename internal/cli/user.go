package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/engine"
)

// storeFlags are the config keys the database commands take.
var storeFlags = []string{"data_dir", "database_url", "log_level", "log_format"}

func migrateCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlagSet("migrate", "", "Apply the database migrations that have not run yet, and exit.\n`liveclass serve` applies them on start too.")
	cf := addConfigFlags(fs, storeFlags...)
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := cf.load(fs, e)
	if err != nil {
		return err
	}
	log := newLogger(e.Stderr, cfg.LogFormat, cfg.LogLevel)
	applied, err := engine.Migrate(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.Stdout, "The database is up to date.")
		return nil
	}
	for _, m := range applied {
		fmt.Fprintln(e.Stdout, "applied", m)
	}
	return nil
}

const userUsage = `Usage: liveclass user <add|list|set-role|reset-password> [flags]

  add             create an account: --email, --name, --role, [--password-file]
  list            list accounts
  set-role        change an account's role: --email, --role
  reset-password  give an account a new password: --email, [--password-file]

Without --password-file a password is generated and printed once.
Each takes --config, --data-dir and --database-url like serve.`

func userCmd(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 {
		return usagef("user: missing subcommand\n\n%s", userUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(e.Stdout, userUsage)
		return nil
	case "add", "list", "set-role", "reset-password":
	default:
		return usagef("user: unknown subcommand %q\n\n%s", sub, userUsage)
	}

	fs := newFlagSet("user "+sub, "", userUsage)
	cf := addConfigFlags(fs, storeFlags...)
	var email, name, role, passwordFile string
	if sub != "list" {
		fs.StringVar(&email, "email", "", "the account's email")
	}
	if sub == "add" {
		fs.StringVar(&name, "name", "", "display name")
	}
	if sub == "add" || sub == "set-role" {
		fs.StringVar(&role, "role", "", "STUDENT, MENTOR or ADMIN")
	}
	if sub == "add" || sub == "reset-password" {
		fs.StringVar(&passwordFile, "password-file", "", "file holding the password (generated and printed when absent)")
	}
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if sub != "list" && email == "" {
		return usagef("user %s: --email is required", sub)
	}
	r := store.Role(role)
	if sub == "add" && role == "" {
		r = store.RoleStudent
	}
	if (sub == "add" || sub == "set-role") && !r.Valid() {
		return usagef("user %s: --role must be STUDENT, MENTOR or ADMIN, got %q", sub, role)
	}
	cfg, err := cf.load(fs, e)
	if err != nil {
		return err
	}
	password, generated := "", false
	if sub == "add" || sub == "reset-password" {
		if passwordFile != "" {
			if password, err = readSecretFile(passwordFile); err != nil {
				return usagef("user %s: --password-file: %v", sub, err)
			}
		} else {
			password, generated = rand.Text()[:20], true
		}
	}

	log := newLogger(e.Stderr, cfg.LogFormat, cfg.LogLevel)
	st, err := openStore(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer st.Close()
	accounts := auth.New(st, auth.Options{Logger: log})

	switch sub {
	case "add":
		u, err := accounts.AddUser(ctx, email, name, password, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "Created %s %s (%s).\n", u.Role, u.Email, u.ID)
	case "set-role":
		if err := accounts.SetRole(ctx, email, r); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "%s is now %s.\n", email, r)
	case "reset-password":
		if err := accounts.ResetPassword(ctx, email, password); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "Password of %s changed.\n", email)
	case "list":
		return listUsers(ctx, e, st)
	}
	if generated {
		fmt.Fprintf(e.Stdout, "Password: %s (shown only now)\n", password)
	}
	return nil
}

func listUsers(ctx context.Context, e Env, st store.Store) error {
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tROLE\tID\tCREATED")
	after := ""
	for {
		page, err := st.ListUsers(ctx, store.UserQuery{Page: store.Page{Limit: 100, After: after}})
		if err != nil {
			return err
		}
		for _, u := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, u.Name, u.Role, u.ID, u.CreatedAt.UTC().Format("2006-01-02 15:04"))
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	return tw.Flush()
}

// openStore opens the database for an administration command, applying
// migrations first so that `user add` works on a fresh data dir.
func openStore(ctx context.Context, url string, log *slog.Logger) (store.Store, error) {
	if _, err := engine.Migrate(ctx, url, log); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	st, err := engine.Open(ctx, url, log)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

package web

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The sample pages below render every template with realistic data, for
// the preview command (cmd/webpreview) and the template tests.

// zeroPages holds every page type once; a new page type must be added here.
var zeroPages = []Page{
	SignupPage{}, CheckInboxPage{}, VerifyPage{}, LoginPage{}, ForgotPage{},
	ResetPage{}, AccountPage{}, ErrorPage{}, MessagePage{}, MailboxPage{},
	LinkPage{}, LinkConfirmPage{},
}

var (
	t0       = time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)
	chromeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	iPhoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	firefox  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
)

var sampleProviders = []ProviderButton{
	{ID: "google", Label: "Google", URL: "/auth/google?return_to=%2Fapp"},
	{ID: "github", Label: "GitHub", URL: "/auth/github?return_to=%2Fapp"},
}

// samplePages renders every page with realistic data; the preview test
// writes them to disk for a look in a browser.
func samplePages() map[string]Page {
	signedIn := Base{SignedIn: true, UserEmail: "ada@example.com", DevMode: true}
	return map[string]Page{
		"login": LoginPage{Base: Base{DevMode: true}, ReturnTo: "/app?x=1&y=2", Providers: sampleProviders},
		"login-error": LoginPage{
			Email: "ada@example.com", Error: "Email or password is incorrect.",
			ReturnTo: "/app", Providers: sampleProviders,
		},
		"login-not-verified": LoginPage{Email: "ada@example.com", NotVerified: true},
		"signup":             SignupPage{MinLength: 12, ReturnTo: "/app", Providers: sampleProviders},
		"signup-errors": SignupPage{
			Email: "ada@example", MinLength: 12,
			FieldErrors: FieldErrors{Email: "Enter an email address like name@example.com.", Password: "Use at least 12 characters."},
		},
		"check-inbox-signup": CheckInboxPage{Email: "ada@example.com", Kind: "signup"},
		"check-inbox-reset":  CheckInboxPage{Email: "ada@example.com", Kind: "reset", ValidFor: "1 hour"},
		"verify":             VerifyPage{Token: "tok123", Valid: true, ReturnTo: "/app"},
		"verify-error":       VerifyPage{Token: "tok123", Valid: true, Error: "That password doesn't match the one you signed up with."},
		"verify-invalid":     VerifyPage{Token: "tok123"},
		"forgot":             ForgotPage{},
		"reset":              ResetPage{Token: "tok456", Valid: true, MinLength: 12},
		"reset-error":        ResetPage{Token: "tok456", Valid: true, MinLength: 12, FieldErrors: FieldErrors{Password: "This password is too common. Try a longer passphrase."}},
		"reset-invalid":      ResetPage{},
		"account": AccountPage{
			Base:        Base{SignedIn: true, UserEmail: "ada@example.com", DevMode: true, Notice: "Your password was updated. Other devices were signed out."},
			Email:       "ada@example.com",
			CreatedAt:   t0.AddDate(0, -3, 0),
			HasPassword: true,
			MinLength:   12,
			Identities: []IdentityRow{
				{Provider: "google", Label: "Google", Email: "ada.lovelace@gmail.com", LinkedAt: t0.AddDate(0, -2, 0), Linked: true, CanDisconnect: true},
				{Provider: "github", Label: "GitHub"},
			},
			Sessions: []SessionRow{
				{ID: "sess-current", CreatedAt: t0, LastSeenAt: t0.Add(2 * time.Hour), UserAgent: chromeUA, IP: "203.0.113.7", Current: true},
				{ID: "sess-phone", CreatedAt: t0.AddDate(0, 0, -5), LastSeenAt: t0.AddDate(0, 0, -1), UserAgent: iPhoneUA, IP: "198.51.100.23"},
				{ID: "sess-work", CreatedAt: t0.AddDate(0, 0, -9), LastSeenAt: t0.AddDate(0, 0, -3), UserAgent: firefox, IP: "2001:db8::1"},
			},
		},
		"account-social-only": AccountPage{
			Base:          signedIn,
			Email:         "grace@example.com",
			CreatedAt:     t0,
			MinLength:     12,
			PasswordError: "Sign in again to set a password.",
			Identities: []IdentityRow{
				{Provider: "google", Label: "Google"},
				{Provider: "github", Label: "GitHub", Email: "grace@users.noreply.github.com", LinkedAt: t0, Linked: true},
			},
			Sessions: []SessionRow{{ID: "only", CreatedAt: t0, LastSeenAt: t0, UserAgent: iPhoneUA, IP: "192.0.2.1", Current: true}},
		},
		"error":   ErrorPage{Base: Base{RequestID: "01JH5K3Z8Q2W"}, Status: 404, Heading: "Page not found", Message: "The page you were looking for doesn't exist or has moved."},
		"message": MessagePage{Base: signedIn, Heading: "Password updated", Message: "Your new password is set. Other devices were signed out.", LinkURL: "/account", LinkText: "Back to your account"},
		"mailbox": MailboxPage{Base: Base{DevMode: true}, Mails: []MailboxRow{
			{ID: "m1", To: "ada@example.com", Subject: "Confirm your email address", At: t0, Link: "http://127.0.0.1:8080/verify?token=Zm9vYmFyYmF6cXV4", Text: "Hi,\n\nconfirm your email address for Gatehouse:\n\nhttp://127.0.0.1:8080/verify?token=Zm9vYmFyYmF6cXV4\n\nThe link is valid for 24 hours."},
			{ID: "m2", To: "grace@example.com", Subject: "Reset your password", At: t0.Add(time.Hour), Link: "http://127.0.0.1:8080/password/reset?token=cXV4YmF6YmFyZm9v", Text: "Someone asked to reset your password.\n\nhttp://127.0.0.1:8080/password/reset?token=cXV4YmF6YmFyZm9v\n\nIf it wasn't you, ignore this mail."},
		}},
		"mailbox-empty": MailboxPage{Base: Base{DevMode: true}},
		"login-other-provider": LoginPage{Providers: append(sampleProviders,
			ProviderButton{ID: "keycloak", Label: "Company SSO", URL: "/auth/keycloak"})},
		"link": LinkPage{
			Email: "ada@example.com", Provider: "Google", ProviderAccount: "ada.lovelace@gmail.com",
			HasPassword: true,
		},
		"link-error": LinkPage{
			Email: "ada@example.com", Provider: "Google", ProviderAccount: "ada.lovelace@gmail.com",
			HasPassword: true, Error: "That password is incorrect.",
		},
		"link-mail-sent": LinkPage{
			Email: "ada@example.com", Provider: "GitHub", ProviderAccount: "ada-lovelace",
			HasPassword: true, MailSent: true,
		},
		"link-no-password": LinkPage{Email: "grace@example.com", Provider: "GitHub", ProviderAccount: "grace-hopper"},
		"link-confirm": LinkConfirmPage{
			Token: "tok789", Valid: true,
			Email: "ada@example.com", Provider: "Google", ProviderAccount: "ada.lovelace@gmail.com",
		},
		"link-confirm-invalid": LinkConfirmPage{Token: "tok789", Provider: "Google"},
	}
}

// SamplePages returns every page with sample data, and the zero value of
// every page type ("zero-<template>"), by file name.
func SamplePages() map[string]Page {
	pages := samplePages()
	for _, p := range zeroPages {
		pages["zero-"+p.TemplateName()] = p
	}
	return pages
}

// WritePreview renders SamplePages into dir as <name>.html, with the static
// files under dir/static, for a look in a browser: serve dir over HTTP
// (the pages link /static/…).
func WritePreview(dir string) error {
	tmpl, err := New()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		return err
	}
	for name, page := range SamplePages() {
		var buf bytes.Buffer
		if err := tmpl.Render(&buf, page); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".html"), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	for _, name := range []string{"style.css", "favicon.svg"} {
		b, err := staticFS.ReadFile("static/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "static", name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

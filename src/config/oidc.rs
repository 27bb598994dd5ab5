//! `OIDC_*`: OpenID Connect providers by issuer URL (ADR 44). One unnamed provider
//! (`OIDC_ISSUER`, ...) and any number of named ones (`OIDC_PROVIDERS=keycloak,authelia`,
//! then `OIDC_KEYCLOAK_ISSUER`, ...). Google keeps its own `GOOGLE_*` settings (a preset).

use anyhow::bail;
use secrecy::SecretString;

use super::Env;

/// One provider as configured.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// In the routes: `/auth/oidc/{id}/login`.
    pub id: String,
    /// On the button: "Sign in with {name}".
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_url: String,
}

/// Every configured provider, in the order the settings name them.
pub(super) fn providers(env: &Env, public_base_url: &str) -> anyhow::Result<Vec<OidcConfig>> {
    let mut providers = Vec::new();
    let unnamed_id = env.string("OIDC_ID", "oidc");
    // Spelled out for the unnamed provider (tests/ops finds the names read here).
    let unnamed = Vars {
        issuer: env.optional("OIDC_ISSUER"),
        client_id: env.optional("OIDC_CLIENT_ID"),
        client_secret: env.secret("OIDC_CLIENT_SECRET")?,
        name: env.optional("OIDC_NAME"),
        redirect_url: env.optional("OIDC_REDIRECT_URL"),
    };
    if let Some(provider) = provider(unnamed, "OIDC", &unnamed_id, public_base_url)? {
        providers.push(provider);
    }
    for id in env
        .optional("OIDC_PROVIDERS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        let prefix = format!("OIDC_{}", id.to_ascii_uppercase().replace('-', "_"));
        let var = |name: &str| format!("{prefix}_{name}");
        let vars = Vars {
            issuer: env.optional(&var("ISSUER")),
            client_id: env.optional(&var("CLIENT_ID")),
            client_secret: env.secret(&var("CLIENT_SECRET"))?,
            name: env.optional(&var("NAME")),
            redirect_url: env.optional(&var("REDIRECT_URL")),
        };
        match provider(vars, &prefix, id, public_base_url)? {
            Some(provider) => providers.push(provider),
            None => bail!(
                "OIDC_PROVIDERS names {id:?}: set {prefix}_ISSUER, {prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET"
            ),
        }
    }
    for (i, provider) in providers.iter().enumerate() {
        let id = &provider.id;
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            bail!("OpenID Connect provider id {id:?}: use lower-case letters, digits and '-'");
        }
        if id == "google" {
            bail!("OpenID Connect provider id \"google\" is the Google preset's: configure it with GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET and GOOGLE_REDIRECT_URL");
        }
        if providers[..i].iter().any(|p| &p.id == id) {
            bail!("OpenID Connect provider id {id:?} is configured twice");
        }
    }
    Ok(providers)
}

/// One provider's settings as read.
struct Vars {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    name: Option<String>,
    redirect_url: Option<String>,
}

fn provider(
    vars: Vars,
    prefix: &str,
    id: &str,
    public_base_url: &str,
) -> anyhow::Result<Option<OidcConfig>> {
    let (issuer, client_id, client_secret) = match (vars.issuer, vars.client_id, vars.client_secret)
    {
        (Some(issuer), Some(client_id), Some(secret)) => (issuer, client_id, secret),
        (None, None, None) => return Ok(None),
        _ => bail!(
            "set {0}_ISSUER, {0}_CLIENT_ID and {0}_CLIENT_SECRET together",
            prefix
        ),
    };
    let parsed = url::Url::parse(&issuer)
        .map_err(|e| anyhow::anyhow!("{prefix}_ISSUER={issuer:?} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("OpenID Connect").to_owned();
    Ok(Some(OidcConfig {
        id: id.to_owned(),
        name: vars.name.unwrap_or(host),
        // The provider compares `iss` with the issuer as given; trailing slash and all.
        issuer,
        client_id,
        client_secret,
        redirect_url: vars
            .redirect_url
            .unwrap_or_else(|| format!("{public_base_url}/api/auth/oidc/{id}/callback")),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use crate::Config;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const UNNAMED: [(&str, &str); 4] = [
        ("PUBLIC_BASE_URL", "https://music.example.org/"),
        (
            "OIDC_ISSUER",
            "https://auth.example.org/application/o/jukebox/",
        ),
        ("OIDC_CLIENT_ID", "jukebox"),
        ("OIDC_CLIENT_SECRET", "s3cret"),
    ];

    #[test]
    fn one_provider_by_issuer_client_id_and_secret_with_defaults() {
        assert!(config(&[]).unwrap().oidc_providers.is_empty());
        let providers = config(&UNNAMED).unwrap().oidc_providers;
        assert_eq!(providers.len(), 1);
        let p = &providers[0];
        assert_eq!(
            (
                p.id.as_str(),
                p.name.as_str(),
                p.issuer.as_str(),
                p.client_id.as_str()
            ),
            (
                "oidc",
                "auth.example.org",
                "https://auth.example.org/application/o/jukebox/",
                "jukebox"
            )
        );
        assert_eq!(p.client_secret.expose_secret(), "s3cret");
        assert_eq!(
            p.redirect_url,
            "https://music.example.org/api/auth/oidc/oidc/callback"
        );
    }

    #[test]
    fn the_client_secret_comes_from_a_file_but_not_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oidc_client_secret");
        std::fs::write(&path, "from a file\n").unwrap();
        let path = path.to_str().unwrap();
        let mut vars: Vec<(&str, &str)> = UNNAMED
            .into_iter()
            .filter(|(k, _)| *k != "OIDC_CLIENT_SECRET")
            .collect();
        vars.push(("OIDC_CLIENT_SECRET_FILE", path));
        let providers = config(&vars).unwrap().oidc_providers;
        assert_eq!(providers[0].client_secret.expose_secret(), "from a file");
        vars.push(("OIDC_CLIENT_SECRET", "inline"));
        assert_eq!(
            config(&vars).unwrap_err().to_string(),
            "set OIDC_CLIENT_SECRET or OIDC_CLIENT_SECRET_FILE, not both"
        );
    }

    #[test]
    fn named_providers_take_their_own_settings() {
        let mut vars = UNNAMED.to_vec();
        vars.extend([
            ("OIDC_NAME", "Authentik"),
            ("OIDC_ID", "authentik"),
            ("OIDC_PROVIDERS", "keycloak, home-sso"),
            (
                "OIDC_KEYCLOAK_ISSUER",
                "https://kc.example.org/realms/music",
            ),
            ("OIDC_KEYCLOAK_CLIENT_ID", "kc"),
            ("OIDC_KEYCLOAK_CLIENT_SECRET", "kc-secret"),
            ("OIDC_KEYCLOAK_NAME", "Keycloak"),
            ("OIDC_HOME_SSO_ISSUER", "https://sso.home.arpa"),
            ("OIDC_HOME_SSO_CLIENT_ID", "jb"),
            ("OIDC_HOME_SSO_CLIENT_SECRET", "jb-secret"),
            (
                "OIDC_HOME_SSO_REDIRECT_URL",
                "https://jb.home.arpa/api/auth/oidc/home-sso/callback",
            ),
        ]);
        let providers = config(&vars).unwrap().oidc_providers;
        let seen: Vec<(&str, &str, &str)> = providers
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str(), p.redirect_url.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "authentik",
                    "Authentik",
                    "https://music.example.org/api/auth/oidc/authentik/callback"
                ),
                (
                    "keycloak",
                    "Keycloak",
                    "https://music.example.org/api/auth/oidc/keycloak/callback"
                ),
                (
                    "home-sso",
                    "sso.home.arpa",
                    "https://jb.home.arpa/api/auth/oidc/home-sso/callback"
                ),
            ]
        );
    }

    #[test]
    fn half_configured_or_clashing_providers_stop_the_start() {
        let error = |vars: &[(&str, &str)]| config(vars).unwrap_err().to_string();
        assert_eq!(
            error(&[("OIDC_ISSUER", "https://auth.example.org")]),
            "set OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET together"
        );
        assert_eq!(
            error(&[("OIDC_PROVIDERS", "keycloak")]),
            "OIDC_PROVIDERS names \"keycloak\": set OIDC_KEYCLOAK_ISSUER, OIDC_KEYCLOAK_CLIENT_ID and OIDC_KEYCLOAK_CLIENT_SECRET"
        );
        let mut vars = UNNAMED.to_vec();
        vars.push(("OIDC_ID", "Auth/1"));
        assert_eq!(
            error(&vars),
            "OpenID Connect provider id \"Auth/1\": use lower-case letters, digits and '-'"
        );
        vars.pop();
        vars.push(("OIDC_ID", "google"));
        assert!(error(&vars)
            .starts_with("OpenID Connect provider id \"google\" is the Google preset's"));
        vars.pop();
        vars.push(("OIDC_ISSUER", "not a url"));
        let mut vars: Vec<(&str, &str)> = vars
            .into_iter()
            .filter(|(k, v)| *k != "OIDC_ISSUER" || *v == "not a url")
            .collect();
        assert!(error(&vars).starts_with("OIDC_ISSUER=\"not a url\" is not a URL"));
        vars.retain(|(k, _)| *k != "OIDC_ISSUER");
        vars.extend([
            ("OIDC_ISSUER", "https://a.example"),
            ("OIDC_PROVIDERS", "oidc"),
            ("OIDC_OIDC_ISSUER", "https://b.example"),
            ("OIDC_OIDC_CLIENT_ID", "b"),
            ("OIDC_OIDC_CLIENT_SECRET", "b"),
        ]);
        assert_eq!(
            error(&vars),
            "OpenID Connect provider id \"oidc\" is configured twice"
        );
    }
}

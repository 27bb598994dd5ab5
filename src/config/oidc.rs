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
    if let Some(provider) = provider(env, "OIDC", &unnamed_id, public_base_url)? {
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
        match provider(env, &prefix, id, public_base_url)? {
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

fn provider(
    env: &Env,
    prefix: &str,
    id: &str,
    public_base_url: &str,
) -> anyhow::Result<Option<OidcConfig>> {
    let var = |name: &str| format!("{prefix}_{name}");
    let issuer = env.optional(&var("ISSUER"));
    let client_id = env.optional(&var("CLIENT_ID"));
    let client_secret = env.secret(&var("CLIENT_SECRET"))?;
    let (issuer, client_id, client_secret) = match (issuer, client_id, client_secret) {
        (Some(issuer), Some(client_id), Some(secret)) => (issuer, client_id, secret),
        (None, None, None) => return Ok(None),
        _ => bail!(
            "set {0}_ISSUER, {0}_CLIENT_ID and {0}_CLIENT_SECRET together",
            prefix
        ),
    };
    let parsed = url::Url::parse(&issuer)
        .map_err(|e| anyhow::anyhow!("{}={issuer:?} is not a URL: {e}", var("ISSUER")))?;
    let host = parsed.host_str().unwrap_or("OpenID Connect").to_owned();
    Ok(Some(OidcConfig {
        id: id.to_owned(),
        name: env.string(&var("NAME"), &host),
        // The provider compares `iss` with the issuer as given; trailing slash and all.
        issuer,
        client_id,
        client_secret,
        redirect_url: env.string(
            &var("REDIRECT_URL"),
            &format!("{public_base_url}/api/auth/oidc/{id}/callback"),
        ),
    }))
}

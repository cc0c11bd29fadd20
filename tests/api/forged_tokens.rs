//! The forged-token suite (reliability.md 2.1): hand-made JWTs against a
//! sample of operations on every surface. Every forgery is a 401, never a
//! 5xx; only the documented schemes with a genuine token get through.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{PASSWORD, SECRET, TestApp};

/// One authenticated operation per surface (and a few more).
const SAMPLE: &[&str] = &[
    "/api/auth/users/me/",
    "/api/auth/api-keys/",
    "/api/departments/",
    "/api/myTeams/",
    "/me",
    "/programs",
    "/auth/coach/",
    "/auth/areas/",
    "/api/admin/coaches/",
    "/api/v1/profiles",
];

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// `header.payload.signature` signed with HMAC-`alg` under `key`.
fn sign(header: &Value, payload: &str, key: &[u8], alg: &str) -> String {
    let head = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.as_bytes())
    );
    let sig = match alg {
        "HS256" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(head.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "HS512" => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
            mac.update(head.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "HS384" => {
            let mut mac = Hmac::<sha2::Sha384>::new_from_slice(key).unwrap();
            mac.update(head.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => Vec::new(),
    };
    format!("{head}.{}", b64(&sig))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn status(app: &TestApp, path: &str, authorization: &str) -> (u16, String) {
    let r = app
        .client
        .request(Method::GET, app.url(path))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn forged_tokens_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let (id, access, refresh) = app.active_user("admin@example.com", "Admin").await;
    // The genuine token's claims, to forge from.
    let payload_of = |token: &str| -> Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    let claims = payload_of(&access);
    let with = |changes: Value| -> String {
        let mut c = claims.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c.to_string()
    };
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let key = SECRET.as_bytes();
    let genuine_parts: Vec<&str> = access.split('.').collect();
    let mut forgeries: Vec<(&str, String)> = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        forgeries.push((
            "alg none",
            format!(
                "{}.{}.",
                b64(header.to_string().as_bytes()),
                genuine_parts[1]
            ),
        ));
    }
    forgeries.push((
        "signature stripped",
        format!("{}.{}.", genuine_parts[0], genuine_parts[1]),
    ));
    forgeries.push((
        "another secret",
        sign(
            &hs256,
            &claims.to_string(),
            b"another-secret-that-is-long-enough-000",
            "HS256",
        ),
    ));
    for alg in ["HS384", "HS512"] {
        forgeries.push((
            "alg off the allowlist",
            sign(
                &json!({"alg": alg, "typ": "JWT"}),
                &claims.to_string(),
                key,
                alg,
            ),
        ));
    }
    // A key chosen by the token is never used: these are signed with a
    // key the server does not hold.
    for header in [
        json!({"alg": "HS256", "kid": "../../../../dev/null"}),
        json!({"alg": "HS256", "kid": "' OR 1=1--"}),
        json!({"alg": "HS256", "jku": "http://127.0.0.1:9/keys"}),
        json!({"alg": "HS256", "x5u": "http://127.0.0.1:9/cert"}),
        json!({"alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"attacker")}}),
    ] {
        forgeries.push((
            "key from the token",
            sign(&header, &claims.to_string(), b"attacker", "HS256"),
        ));
    }
    let t = now();
    forgeries.push((
        "expired",
        sign(&hs256, &with(json!({"exp": t - 60})), key, "HS256"),
    ));
    forgeries.push((
        "exp as a string",
        sign(
            &hs256,
            &with(json!({"exp": (t + 600).to_string()})),
            key,
            "HS256",
        ),
    ));
    forgeries.push((
        "nbf as a string",
        sign(
            &hs256,
            &with(json!({"nbf": (t + 600).to_string()})),
            key,
            "HS256",
        ),
    ));
    forgeries.push((
        "nbf in the future",
        sign(&hs256, &with(json!({"nbf": t + 600})), key, "HS256"),
    ));
    forgeries.push((
        "exp missing",
        sign(&hs256, &with(json!({"exp": null})), key, "HS256"),
    ));
    // Another user's id with the original signature.
    let tampered = with(json!({"user_id": (id + 1).to_string()}));
    forgeries.push((
        "payload tampered",
        format!(
            "{}.{}.{}",
            genuine_parts[0],
            b64(tampered.as_bytes()),
            genuine_parts[2]
        ),
    ));
    forgeries.push(("refresh as access", refresh.clone()));
    forgeries.push((
        "wrong type",
        sign(
            &hs256,
            &with(json!({"token_type": "activation"})),
            key,
            "HS256",
        ),
    ));
    forgeries.push((
        "no user",
        sign(&hs256, &with(json!({"user_id": null})), key, "HS256"),
    ));
    forgeries.push((
        "user who does not exist",
        sign(&hs256, &with(json!({"user_id": "999999"})), key, "HS256"),
    ));
    forgeries.push((
        "stale token version",
        sign(&hs256, &with(json!({"ver": 7})), key, "HS256"),
    ));
    // Duplicate keys: the later user id must not win a privilege.
    let duplicate = format!(
        "{{\"token_type\":\"access\",\"exp\":{},\"iat\":{},\"jti\":\"x\",\"user_id\":\"{id}\",\"user_id\":\"999999\",\"ver\":0}}",
        t + 600,
        t
    );
    forgeries.push(("duplicate keys", sign(&hs256, &duplicate, key, "HS256")));
    forgeries.push(("garbage", "not-a-token".to_string()));
    forgeries.push(("64 KiB", "a".repeat(64 * 1024)));

    let mut checked = 0;
    let mut failures = Vec::new();
    for (case, token) in &forgeries {
        for path in SAMPLE {
            for scheme in ["JWT", "Bearer"] {
                let (code, body) = status(&app, path, &format!("{scheme} {token}")).await;
                checked += 1;
                let ok = code == 401 || (*case == "64 KiB" && (code == 400 || code == 431));
                if !ok {
                    failures.push(format!("{case} {scheme} {path}: {code} {body:.120}"));
                }
            }
        }
    }
    // The documented schemes, with a genuine token, get through; others are
    // no credentials at all.
    for (authorization, expected) in [
        (format!("JWT {access}"), 200),
        (format!("Bearer {access}"), 200),
        (format!("jwt {access}"), 200),
        (format!("JWT   {access}"), 200),
        (format!("Token {access}"), 401),
        (format!("Basic {access}"), 401),
        (access.clone(), 401),
        (format!("JWT {access} extra"), 401),
    ] {
        let (code, body) = status(&app, "/api/auth/users/me/", &authorization).await;
        checked += 1;
        if code != expected {
            failures.push(format!(
                "scheme {authorization:.20}...: {code} (expected {expected}) {body}"
            ));
        }
    }
    // A password change ends every earlier token at once.
    let r = app
        .post(
            "/api/auth/users/set_password/",
            Some(&access),
            json!({"current_password": PASSWORD, "new_password": "Another-Secret-42",
                   "re_new_password": "Another-Secret-42"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    for path in SAMPLE {
        let (code, _) = status(&app, path, &format!("JWT {access}")).await;
        checked += 1;
        if code != 401 {
            failures.push(format!(
                "token from before a password change on {path}: {code}"
            ));
        }
    }
    crate::harness::figure(&format!(
        "forged tokens: {} forgeries x {} operations x 2 schemes, {checked} requests, {} accepted",
        forgeries.len(),
        SAMPLE.len(),
        failures.len()
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

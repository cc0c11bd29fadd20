//! DRF's list machinery: `PageNumberPagination` (10 per page, `page_size`
//! up to 100, `page=last`, absolute links with sorted query parameters),
//! `SearchFilter`'s term splitting and `OrderingFilter`'s field list.

use axum::http::{HeaderMap, Uri, header};
use serde::Serialize;
use serde_json::json;

use super::drf::DrfError;
use crate::domain::company::{ListRequest, Page, PageNumber};

pub const PAGE_SIZE: i64 = 10;
pub const MAX_PAGE_SIZE: i64 = 100;

/// Reads `search`, `ordering`, `page` and `page_size` from a query string.
/// `field` maps an ordering name to the list's field; unknown names are
/// dropped, as DRF drops them.
pub fn list_request<O: Copy>(
    query: Option<&str>,
    field: impl Fn(&str) -> Option<O>,
) -> Result<ListRequest<O>, DrfError> {
    let pairs = query_pairs(query);
    let get = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let search = get("search").unwrap_or("");
    if search.contains('\0') {
        return Err(DrfError::Raw(
            axum::http::StatusCode::BAD_REQUEST,
            json!(["Null characters are not allowed."]),
        ));
    }
    let terms = search_terms(search);
    let order = get("ordering")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter_map(|name| match name.strip_prefix('-') {
            Some(rest) => field(rest).map(|f| (f, true)),
            None => field(name).map(|f| (f, false)),
        })
        .collect();
    let page = match get("page") {
        None => PageNumber::Number(1),
        Some("last") => PageNumber::Last,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            PageNumber::Number(p.parse().unwrap_or(0))
        }
        Some(_) => PageNumber::Number(0),
    };
    let page_size = get("page_size")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .map(|n| n.min(MAX_PAGE_SIZE))
        .unwrap_or(PAGE_SIZE);
    Ok(ListRequest {
        terms,
        order,
        page,
        page_size,
    })
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or("")).unwrap_or_default()
}

/// DRF's `search_smart_split`: whitespace separates terms, quoted phrases
/// stay whole, commas separate unquoted terms, empty terms are dropped.
pub fn search_terms(search: &str) -> Vec<String> {
    let mut terms = Vec::new();
    for token in smart_split(search) {
        let token = token.trim_matches(',');
        let quoted = token.len() >= 2
            && (token.starts_with('"') || token.starts_with('\''))
            && token.chars().next() == token.chars().last();
        if quoted {
            let inner = &token[1..token.len() - 1];
            let phrase = inner
                .replace("\\\"", "\"")
                .replace("\\'", "'")
                .replace("\\\\", "\\");
            if !phrase.is_empty() {
                terms.push(phrase);
            }
        } else {
            terms.extend(
                token
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            );
        }
    }
    // A separator no term may carry (it joins fields in the PostgreSQL index).
    terms
        .into_iter()
        .map(|t| t.replace('\u{1f}', ""))
        .filter(|t| !t.is_empty())
        .collect()
}

/// Django's `smart_split`: split on whitespace, except inside quotes.
fn smart_split(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
        } else if c == '"' || c == '\'' {
            current.push(c);
            while let Some(d) = chars.next() {
                current.push(d);
                if d == '\\' {
                    if let Some(e) = chars.next() {
                        current.push(e);
                    }
                } else if d == c {
                    break;
                }
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// The DRF page body: `count, next, previous, results`, serialized straight
/// from the rows (a `serde_json::Value` per row cost a map and a copy of
/// every string).
#[derive(Serialize)]
pub struct PageBody<S> {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<S>,
}

/// The page of `page` with `item` rendering each row.
pub fn page_body<'a, T, S: Serialize>(
    page: &'a Page<T>,
    uri: &Uri,
    headers: &HeaderMap,
    scheme: &str,
    item: impl Fn(&'a T) -> S,
) -> PageBody<S> {
    let links = PageLinks::new(uri, headers, scheme);
    let next = (page.number < page.last).then(|| links.to(Some(page.number + 1)));
    let previous = match page.number {
        1 => None,
        2 => Some(links.to(None)),
        n => Some(links.to(Some(n - 1))),
    };
    PageBody {
        count: page.count,
        next,
        previous,
        results: page.rows.iter().map(item).collect(),
    }
}

/// The request's absolute URL with `page` set (or removed, for page 1) and
/// every query parameter re-encoded and sorted, as DRF builds its links.
/// The query is parsed once for both of a page's links.
struct PageLinks {
    /// `scheme://host/path`.
    base: String,
    /// The query's pairs but `page`, in the request's order.
    pairs: Vec<(String, String)>,
}

impl PageLinks {
    fn new(uri: &Uri, headers: &HeaderMap, scheme: &str) -> PageLinks {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let mut pairs = query_pairs(uri.query());
        pairs.retain(|(k, _)| k != "page");
        PageLinks {
            base: format!("{scheme}://{host}{}", uri.path()),
            pairs,
        }
    }

    /// The link to page `page` (`None`: the first page, without `page`).
    fn to(&self, page: Option<i64>) -> String {
        let number = page.map(|n| n.to_string());
        let mut pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(number.as_deref().map(|n| ("page", n)))
            .collect();
        // Stable, as Python's sort: repeated keys keep their order.
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let mut link = String::with_capacity(self.base.len() + 64);
        link.push_str(&self.base);
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            link.push(if i == 0 { '?' } else { '&' });
            push_quote_plus(&mut link, k);
            link.push('=');
            push_quote_plus(&mut link, v);
        }
        link
    }
}

/// Python's `quote_plus`, appended to `out`: keep `A-Za-z0-9_.-~`, spaces
/// become `+`, every other byte `%XX`.
fn push_quote_plus(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_split_like_drf() {
        assert_eq!(search_terms("jane  doe"), vec!["jane", "doe"]);
        assert_eq!(search_terms("a,b, c"), vec!["a", "b", "c"]);
        assert_eq!(search_terms("\"jane doe\" x"), vec!["jane doe", "x"]);
        assert_eq!(search_terms("  ,, "), Vec::<String>::new());
        assert_eq!(search_terms("50%_"), vec!["50%_"]);
    }

    #[test]
    fn links_sort_and_encode_like_django() {
        let uri: Uri = "/api/myTeams/?search=o%27brien&ordering=-last_name,id&page=2"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "example.com:8000".parse().unwrap());
        let links = PageLinks::new(&uri, &headers, "http");
        assert_eq!(
            links.to(Some(3)),
            "http://example.com:8000/api/myTeams/?ordering=-last_name%2Cid&page=3&search=o%27brien"
        );
        assert_eq!(
            links.to(None),
            "http://example.com:8000/api/myTeams/?ordering=-last_name%2Cid&search=o%27brien"
        );
        // Spaces become `+`, other bytes `%XX` (UTF-8, upper case); a
        // repeated parameter keeps its order, as Python's stable sort does.
        let uri: Uri = "/x?z=2&search=a%20b/%C3%A9~&z=1&page=9".parse().unwrap();
        assert_eq!(
            PageLinks::new(&uri, &HeaderMap::new(), "https").to(Some(10)),
            "https://localhost/x?page=10&search=a+b%2F%C3%A9~&z=2&z=1"
        );
    }

    #[test]
    fn page_parameters() {
        let req = list_request(Some("page=last&page_size=500"), |_| Some(())).unwrap();
        assert_eq!((req.page, req.page_size), (PageNumber::Last, 100));
        let req = list_request(Some("page=2.0&page_size=-3"), |_| Some(())).unwrap();
        assert_eq!((req.page, req.page_size), (PageNumber::Number(0), 10));
    }
}

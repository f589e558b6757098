"""Resolving Kubernetes API requests exactly as kube-apiserver does, and refusing ambiguous ones."""

from __future__ import annotations

import pytest

from chalicelib.errors import BadRequest, MethodNotAllowed
from chalicelib.kube.request import (
    KubeRequest,
    canonical_query,
    is_discovery,
    parse_query,
    resolve,
)


def _split_url(url: str) -> tuple[str, str]:
    path, _, query = url.partition("?")
    return path, query


# The success table of kube-apiserver's TestGetAPIRequestInfo
# (staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo_test.go), same inputs and
# expectations: method, url, verb, prefix, group, version, namespace, resource, subresource, name.
# (Upstream expects prefix "api" for /apis/... but never asserts it; we assert the real prefix.)
# fmt: off
KUBE_API_REQUEST_INFO_CASES = [
    # resource paths
    ("GET", "/api/v1/namespaces", "list", "api", "", "v1", "", "namespaces", "", ""),
    ("GET", "/api/v1/namespaces/other", "get", "api", "", "v1", "other", "namespaces", "", "other"),
    ("GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "",
     "foo"),
    ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "",
     "foo"),
    ("GET", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", ""),
    ("HEAD", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", ""),
    ("PATCH", "/api/v1/namespaces/new-namespace", "patch", "api", "", "v1", "", "namespaces", "",
     "new-namespace"),
    # special verbs
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "api", "", "v1", "other", "pods",
     "", "foo"),
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "api",
     "", "v1", "other", "pods", "", "foo"),
    ("GET", "/api/v1/watch/pods", "watch", "api", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=true", "watch", "api", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=false", "list", "api", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "api", "", "v1", "other", "pods", "",
     ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "api", "", "v1", "other", "pods", "",
     ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "api", "", "v1", "other", "pods", "",
     ""),
    # subresource identification
    ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "api", "", "v1", "other", "pods",
     "status", "foo"),
    ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "api", "", "v1", "other",
     "pods", "proxy", "foo"),
    ("PUT", "/api/v1/namespaces/other/finalize", "update", "api", "", "v1", "other", "namespaces",
     "finalize", "other"),
    ("PUT", "/api/v1/namespaces/other/status", "update", "api", "", "v1", "other", "namespaces",
     "status", "other"),
    # verb identification
    ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "api", "", "v1", "other", "pods", "",
     "foo"),
    ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "api", "", "v1", "other", "pods", "",
     "foo"),
    ("POST", "/api/v1/namespaces/other/pods", "create", "api", "", "v1", "other", "pods", "", ""),
    # deletecollection verb identification
    ("DELETE", "/api/v1/nodes", "deletecollection", "api", "", "v1", "", "nodes", "", ""),
    ("DELETE", "/api/v1/namespaces", "deletecollection", "api", "", "v1", "", "namespaces", "", ""),
    ("DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "api", "", "v1", "other",
     "pods", "", ""),
    ("DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "apis",
     "extensions", "v1", "other", "pods", "", ""),
    # api group identification
    ("POST", "/apis/extensions/v1/namespaces/other/pods", "create", "apis", "extensions", "v1",
     "other", "pods", "", ""),
    # api version identification
    ("POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "apis", "extensions",
     "v1beta3", "other", "pods", "", ""),
]
# fmt: on


@pytest.mark.parametrize(
    "method,url,verb,prefix,group,version,namespace,resource,subresource,name",
    KUBE_API_REQUEST_INFO_CASES,
)
def test_resource_requests_resolve_like_kube_apiserver(
    method, url, verb, prefix, group, version, namespace, resource, subresource, name
):
    path, query = _split_url(url)
    assert resolve(method, path, query) == KubeRequest(
        verb=verb,
        path=path,
        is_resource_request=True,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )


# The error table of TestGetAPIRequestInfo: kube resolves these as non-resource requests.
@pytest.mark.parametrize(
    "path",
    [
        "/",  # no resource path
        "/api/version/",  # just apiversion / apiversion with no resource
        "/apis/group/version/",  # just prefix, group, version
        "/badprefix/version/resource",  # bad prefix
        "/apis/version/resource",  # missing api group
    ],
)
def test_paths_without_a_resource_are_non_resource_requests(path):
    request = resolve("GET", path, "")
    assert request.is_resource_request is False
    assert request.verb == "get"
    assert request.path == path
    assert request.resource == ""


# TestGetNonAPIRequestInfo (the "empty" case is refused: a path must start with '/').
@pytest.mark.parametrize(
    "path,is_resource",
    [
        ("/api/version/resource", True),  # simple groupless
        ("/apis/group/version/resource/name/subresource", True),  # simple group
        ("/api/version/resource/name/subresource", True),  # more steps
        ("/apis/batch/v1/job", True),  # group list
        ("/apis/batch/v1/job/foo", True),  # group get
        ("/apis/batch/v1/job/foo/scale", True),  # group subresource
        ("/not-api/version/resource", False),  # bad root
        ("/apis/extensions/v1beta1", False),  # group without enough steps
        ("/apis/extensions/v1beta1/", False),  # group without enough steps 2
        ("/api/version", False),  # not enough steps
        ("/api", False),  # one step
        ("/", False),  # zero step
    ],
)
def test_resource_and_non_resource_paths_are_told_apart_like_kube(path, is_resource):
    assert resolve("GET", path, "").is_resource_request is is_resource


# TestFieldSelectorParsing: url, expected name, expected verb.
@pytest.mark.parametrize(
    "url,name,verb",
    [
        ("/apis/group/version/resource", "", "list"),
        ("/apis/group/version/resource?fieldSelector=metadata.name=name1", "name1", "list"),
        (
            "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1",
            "name1",
            "watch",
        ),
        ("/apis/group/version/resource?fieldSelector=foo=bar", "", "list"),
        ("/apis/group/version/resource?fieldSelector=metadata.name=name1,foo", "", "list"),
        (
            "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true",
            "",
            "watch",
        ),
        (
            "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false",
            "",
            "list",
        ),
    ],
)
def test_field_selector_names_a_single_object_like_kube(url, name, verb):
    path, query = _split_url(url)
    request = resolve("GET", path, query)
    assert (request.name, request.verb) == (name, verb)


@pytest.mark.parametrize(
    "query,name",
    [
        ("fieldSelector=metadata.name%3Dweb", "web"),
        ("fieldSelector=metadata.name%3D%3Dweb", "web"),
        ("fieldSelector=metadata.name!%3Dweb", ""),
        ("fieldSelector=status.phase%3DRunning,metadata.name%3Dweb", "web"),
        # Terms are sorted before parsing, so the lexically first metadata.name wins.
        ("fieldSelector=metadata.name%3Db,metadata.name%3Da", "a"),
        ("fieldSelector=metadata.name%3Da%5C,b", "a,b"),
        # Names kube would never accept as a path segment are not taken.
        ("fieldSelector=metadata.name%3D..", ""),
        ("fieldSelector=metadata.name%3Da%2Fb", ""),
        # A decode error anywhere in ListOptions makes kube ignore the selector.
        ("fieldSelector=metadata.name%3Dweb&limit=ten", ""),
        ("fieldSelector=metadata.name%3Dweb&timeoutSeconds=", ""),
        ("fieldSelector=metadata.name%3Dweb&limit=500", "web"),
        ("fieldSelector=metadata.name%3Dweb%5C", ""),
        ("fieldSelector=+metadata.name%3Dweb", ""),
    ],
)
def test_field_selector_name_extraction_follows_kube_parsing(query, name):
    request = resolve("GET", "/api/v1/namespaces/shop/secrets", query)
    assert request.verb == "list"
    assert request.name == name


def test_field_selector_name_is_taken_from_a_mapping_query():
    request = resolve(
        "GET", "/api/v1/namespaces/shop/secrets", {"fieldSelector": "metadata.name=db"}
    )
    assert (request.verb, request.name) == ("list", "db")


def test_field_selector_is_ignored_for_delete_so_it_stays_a_deletecollection():
    request = resolve("DELETE", "/api/v1/namespaces/shop/pods", "fieldSelector=metadata.name%3Dweb")
    assert (request.verb, request.name) == ("deletecollection", "")


def test_field_selector_is_ignored_on_the_legacy_watch_prefix():
    request = resolve("GET", "/api/v1/watch/namespaces/shop/pods", "fieldSelector=metadata.name=x")
    assert (request.verb, request.name) == ("watch", "")


@pytest.mark.parametrize(
    "query,verb",
    [
        ("watch=true", "watch"),
        ("watch=1", "watch"),
        ("watch=yes", "watch"),
        ("watch=", "watch"),  # Go: any value but "0"/"false" is true
        ("watch", "watch"),
        ("watch=FALSE", "list"),
        ("watch=0", "list"),
        ("watch=0&watch=1", "list"),  # first value wins, as url.Values.Get
        ("watch=1&watch=0", "watch"),
        ("watch=%66alse", "list"),
        ("limit=bad&watch=true", "watch"),  # decode failure still honours watch
        ("limit=bad&watch=false", "list"),
        ("", "list"),
    ],
)
def test_watch_query_parameter_turns_a_list_into_a_watch(query, verb):
    assert resolve("GET", "/api/v1/namespaces/shop/pods", query).verb == verb


def test_watch_of_a_single_object_by_legacy_prefix_keeps_the_name():
    request = resolve("GET", "/api/v1/watch/namespaces/shop/pods/web", "")
    assert (request.verb, request.resource, request.name) == ("watch", "pods", "web")


def test_watch_query_on_a_named_get_stays_a_get():
    assert resolve("GET", "/api/v1/namespaces/shop/pods/web", "watch=true").verb == "get"


@pytest.mark.parametrize("path", ["/api/v1/watch", "/api/v1/proxy", "/apis/apps/v1/watch/"])
def test_special_verb_without_a_resource_is_refused(path):
    with pytest.raises(BadRequest, match="unable to determine"):
        resolve("GET", path, "")


def test_proxy_prefix_has_no_subresource():
    request = resolve("GET", "/api/v1/proxy/nodes/node-1/metrics", "")
    assert (request.verb, request.resource, request.name, request.subresource) == (
        "proxy",
        "nodes",
        "node-1",
        "",
    )


def test_deletecollection_is_a_delete_without_a_name():
    request = resolve("DELETE", "/apis/apps/v1/namespaces/shop/deployments", "")
    assert request.verb == "deletecollection"
    assert request.resource_with_subresource == "deployments"


def test_namespace_itself_is_the_namespaces_resource():
    request = resolve("GET", "/api/v1/namespaces/shop", "")
    assert (request.resource, request.name, request.namespace) == ("namespaces", "shop", "shop")


def test_delete_of_a_namespace_is_a_delete_not_a_deletecollection():
    request = resolve("DELETE", "/api/v1/namespaces/shop", "")
    assert (request.verb, request.resource, request.name) == ("delete", "namespaces", "shop")


def test_pod_log_is_the_log_subresource():
    request = resolve("GET", "/api/v1/namespaces/shop/pods/web/log", "container=app&follow=true")
    assert request.resource_with_subresource == "pods/log"
    assert (request.verb, request.name, request.namespace) == ("get", "web", "shop")


def test_cluster_scoped_group_resource():
    request = resolve(
        "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user", ""
    )
    assert (request.api_group, request.resource, request.name, request.namespace) == (
        "rbac.authorization.k8s.io",
        "clusterroles",
        "system:basic-user",
        "",
    )


@pytest.mark.parametrize(
    "method,verb",
    [
        ("GET", "get"),
        ("POST", "post"),
        ("PUT", "put"),
        ("DELETE", "delete"),
        ("HEAD", "head"),
        ("OPTIONS", "options"),
        ("PATCH", "patch"),
    ],
)
def test_non_resource_verb_is_the_lower_cased_method(method, verb):
    request = resolve(method, "/version", "")
    assert (request.is_resource_request, request.verb) == (False, verb)


def test_options_on_a_resource_gets_the_empty_verb_like_kube():
    assert resolve("OPTIONS", "/api/v1/namespaces/shop/pods", "").verb == ""


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "get", "Get", ""])
def test_unknown_or_lower_case_methods_are_refused(method):
    with pytest.raises(MethodNotAllowed):
        resolve(method, "/api/v1/pods", "")


# --- case: kube paths are case-sensitive and resolved faithfully, never lower-cased


def test_upper_case_api_prefix_is_a_non_resource_request():
    request = resolve("GET", "/API/v1/pods", "")
    assert request.is_resource_request is False
    assert request.path == "/API/v1/pods"


def test_resource_names_keep_their_case():
    request = resolve("GET", "/api/v1/namespaces/shop/Secrets/db", "")
    assert (request.resource, request.name) == ("Secrets", "db")


def test_capitalised_namespaces_segment_is_not_a_namespace():
    request = resolve("GET", "/api/v1/Namespaces/shop/secrets", "")
    assert (request.namespace, request.resource, request.name, request.subresource) == (
        "",
        "Namespaces",
        "shop",
        "secrets",
    )


def test_capitalised_watch_segment_is_not_the_watch_verb():
    request = resolve("GET", "/api/v1/WATCH/pods", "")
    assert (request.verb, request.resource, request.name) == ("get", "WATCH", "pods")


# --- trailing slash: kube trims it when resolving; the path is kept as given


def test_trailing_slash_resolves_like_kube_and_is_kept_in_the_path():
    request = resolve("GET", "/api/v1/namespaces/shop/secrets/x/", "")
    assert (request.verb, request.resource, request.name, request.namespace) == (
        "get",
        "secrets",
        "x",
        "shop",
    )
    assert request.path == "/api/v1/namespaces/shop/secrets/x/"


def test_trailing_slash_on_a_collection_is_a_list():
    request = resolve("GET", "/api/v1/namespaces/shop/secrets/", "")
    assert (request.verb, request.resource, request.name) == ("list", "secrets", "")


# --- normalization attacks: refused, never resolved as something else


@pytest.mark.parametrize(
    "path,message",
    [
        ("/api/v1/namespaces/shop/pods/../secrets", "'..' segment"),
        ("/api/v1/namespaces/shop/pods/./secrets", "'.' segment"),
        ("/api/v1/namespaces/shop/secrets/..", "'..' segment"),
        ("/api/v1/namespaces/shop/secrets/../", "'..' segment"),
        ("/api/v1//namespaces/shop/secrets", "empty segment"),
        ("//api/v1/pods", "empty segment"),
        ("/api/v1/pods//", "empty segment"),
        ("/api/v1/namespaces/shop/secrets%2Fdb", "percent"),
        ("/api/v1/namespaces/shop/secrets%2fdb", "percent"),
        ("/api/v1/namespaces/shop/pods/%2e%2e/secrets", "percent"),
        ("/api/v1/namespaces/shop/pods/%2E%2E/secrets", "percent"),
        ("/api/v1/namespaces/shop/%73ecrets", "percent"),
        ("/api/v1/namespaces/shop/secrets%252Fdb", "percent"),
        ("/api/v1/namespaces/shop/pods\\..\\secrets", "backslash"),
        ("/api/v1/namespaces/shop/secrets\x00", "control"),
        ("/api/v1/namespaces/shop/secrets\r\nX-Injected: 1", "control"),
        ("/api/v1/namespaces/shop/secr\u0435ts", "non-ASCII"),
        ("api/v1/pods", "start with '/'"),
        ("", "start with '/'"),
        ("/api/v1/namespaces/shop/secrets/a b", "' '"),
        ("/api/v1/namespaces/shop/secrets;x", "';'"),
        ("/api/v1/namespaces/shop/secrets#frag", "'#'"),
        ("/api/v1/namespaces/shop/secrets?x", "'?'"),
        ("/" + "a" * 4096, "longer than 4096"),
    ],
)
def test_ambiguous_paths_are_refused(path, message):
    with pytest.raises(BadRequest, match=message) as raised:
        resolve("GET", path, "")
    assert raised.value.status == 400


def test_a_path_of_exactly_the_maximum_length_is_accepted():
    path = "/" + "a" * 4095
    assert resolve("GET", path, "").path == path


# --- query parsing


def test_query_mapping_and_raw_string_resolve_alike():
    raw = resolve("GET", "/api/v1/pods", "watch=1&labelSelector=app%3Dweb")
    mapped = resolve("GET", "/api/v1/pods", {"watch": ["1"], "labelSelector": "app=web"})
    assert raw == mapped


def test_missing_query_is_an_empty_query():
    assert resolve("GET", "/api/v1/pods", None).verb == "list"


@pytest.mark.parametrize(
    "query,message",
    [
        ("watch=1;limit=5", "';'"),
        ("fieldSelector=metadata.name%3", "percent-escape"),
        ("fieldSelector=%zz", "percent-escape"),
        ("a=%ff", "UTF-8"),
        ("a=b c", "printable ASCII"),
        ("a=b#c", "printable ASCII"),
        ("a=%00", "control"),
    ],
)
def test_ambiguous_queries_are_refused(query, message):
    with pytest.raises(BadRequest, match=message):
        resolve("GET", "/api/v1/pods", query)


def test_query_parsing_follows_go_url_values():
    assert parse_query("a=1&b=%2B+x&a=2&&c&=d") == {
        "a": ["1", "2"],
        "b": ["+ x"],
        "c": [""],
        "": ["d"],
    }


def test_canonical_query_sorts_names_and_keeps_value_order():
    assert canonical_query("watch=1&b=2&a=z&a=y") == "a=z&a=y&b=2&watch=1"


def test_canonical_query_escapes_like_go_query_escape():
    assert (
        canonical_query({"labelSelector": "app in (web, api)", "x": "a/b~c.d-e_f+g"})
        == "labelSelector=app+in+%28web%2C+api%29&x=a%2Fb~c.d-e_f%2Bg"
    )


def test_canonical_query_is_the_same_however_the_client_escaped_it():
    assert canonical_query("fieldSelector=metadata.name%3dweb&limit=5") == canonical_query(
        {"limit": "5", "fieldSelector": ["metadata.name=web"]}
    )


def test_canonical_query_round_trips_to_the_same_values():
    query = {"labelSelector": ["tier notin (a,b)", "x"], "fieldSelector": "metadata.name=a\\,b"}
    assert parse_query(canonical_query(query)) == parse_query(query)


def test_canonical_query_of_nothing_is_empty():
    assert canonical_query(None) == canonical_query("") == canonical_query({}) == ""


# --- discovery


@pytest.mark.parametrize(
    "path",
    [
        "/api",
        "/api/v1",
        "/api/v1/",
        "/apis",
        "/apis/apps",
        "/apis/apps/v1",
        "/version",
        "/version/",
        "/openapi",
        "/openapi/v2",
        "/openapi/v3/apis/apps/v1",
        "/healthz",
        "/livez",
        "/readyz",
    ],
)
def test_discovery_and_health_paths_are_discovery(path):
    assert is_discovery(resolve("GET", path, "")) is True


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/pods"),  # a resource request, not discovery
        ("GET", "/apis/apps/v1/deployments"),
        ("GET", "/healthz/etcd"),  # RBAC grants /healthz exactly, not subpaths
        ("GET", "/metrics"),
        ("GET", "/logs"),
        ("GET", "/"),
        ("GET", "/apifoo"),
        ("POST", "/api"),
        ("HEAD", "/version"),  # verb "head" is not the "get" the ClusterRoles grant
    ],
)
def test_other_requests_are_not_discovery(method, path):
    assert is_discovery(resolve(method, path, "")) is False

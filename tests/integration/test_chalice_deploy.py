"""`chalice deploy --stage dev` against a moto server on loopback runs to the end, and the REST
API it imports routes every kubectl method of the greedy proxy resource to the Lambda."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
from eksgate_local.stage import PROJECT_DIR
from moto.server import ThreadedMotoServer

from chalicelib.policy import load_policies
from chalicelib.policy.snapshot import load_with_snapshot

PROXY_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
REGION = "us-east-1"


def copy_project(target: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        source = PROJECT_DIR / name
        if name.startswith(".chalice/deployed") or not (source.is_file() or source.is_symlink()):
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target / name)
        else:
            shutil.copy2(source, target / name)
    # The API and functions are what is checked here; packaging the requirements for Lambda
    # (manylinux wheels) is chalice's pip step, exercised by a real deploy.
    (target / "requirements.txt").write_text("")


def chalice_deploy(project: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    # Only the loopback moto server is reachable: no AWS profile, config or credentials.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "deploy", "--stage", "dev"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    project = tmp_path_factory.mktemp("deploy") / "project"
    copy_project(project)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        result = chalice_deploy(project, endpoint)
        clients = {
            name: boto3.client(
                name,
                endpoint_url=endpoint,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for name in ("apigateway", "lambda", "iam")
        }
        yield result, clients, project, endpoint
    finally:
        server.stop()


def test_chalice_deploy_runs_to_the_end(deployed):
    result, _, _, _ = deployed
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Rest API URL: https://" in result.stdout


def test_the_three_functions_and_their_roles_exist(deployed):
    _, clients, _, _ = deployed
    functions = {f["FunctionName"] for f in clients["lambda"].list_functions()["Functions"]}
    assert functions == {
        "eksgate-dev",
        "eksgate-dev-audit_export",
        "eksgate-dev-expire_overdue_approvals",
    }
    roles = {r["RoleName"] for r in clients["iam"].list_roles()["Roles"]}
    assert {
        "eksgate-dev-api_handler",
        "eksgate-dev-audit_export",
        "eksgate-dev-expire_overdue_approvals",
    } <= roles


def test_the_greedy_resource_sends_every_method_to_the_lambda(deployed):
    _, clients, _, _ = deployed
    apigateway = clients["apigateway"]
    (api,) = apigateway.get_rest_apis()["items"]
    assert api["name"] == "eksgate"
    resources = {
        r["path"]: r for r in apigateway.get_resources(restApiId=api["id"], limit=500)["items"]
    }
    greedy = resources["/k8s/{cluster}/{proxy+}"]
    assert set(greedy["resourceMethods"]) == PROXY_METHODS
    handler = clients["lambda"].get_function(FunctionName="eksgate-dev")
    handler_arn = handler["Configuration"]["FunctionArn"]
    for method in PROXY_METHODS:
        integration = apigateway.get_integration(
            restApiId=api["id"], resourceId=greedy["id"], httpMethod=method
        )
        assert integration["type"].upper() == "AWS_PROXY"  # moto keeps the case sent
        assert integration["httpMethod"] == "POST"
        assert integration["uri"] == (
            f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31"
            f"/functions/{handler_arn}/invocations"
        )
    assert set(resources["/k8s/{cluster}"]["resourceMethods"]) == PROXY_METHODS
    stages = {s["stageName"] for s in apigateway.get_stages(restApiId=api["id"])["item"]}
    assert "api" in stages


def test_the_lambda_package_holds_the_app_and_no_operator_tools(deployed):
    _, _, project, _ = deployed
    (package,) = (project / ".chalice" / "deployments").glob("*.zip")
    names = zipfile.ZipFile(package).namelist()
    assert "app.py" in names and "chalicelib/__init__.py" in names
    assert not [name for name in names if name.startswith("eksgate/")]


def test_the_lambda_package_holds_the_policy_snapshot_of_its_files(deployed, tmp_path):
    """Packaging compiled the snapshot of exactly the policies it ships; the function's cold
    start, reading the package, uses it (eksgate/policy_packaging.py)."""
    _, _, project, _ = deployed
    assert "eksgate: compiled 3 policies into chalicelib/policies/.eksgate-snapshot.json" in (
        deployed[0].stdout
    )
    (package,) = (project / ".chalice" / "deployments").glob("*.zip")
    with zipfile.ZipFile(package) as archive:
        assert "chalicelib/policies/.eksgate-snapshot.json" in archive.namelist()
        archive.extractall(tmp_path / "task")
    policies = tmp_path / "task" / "chalicelib" / "policies"
    loaded = load_with_snapshot(policies)
    assert loaded.snapshot == "used", loaded.detail
    assert tuple(loaded.policies) == tuple(load_policies(policies))


def test_a_second_deploy_updates_the_same_api(deployed):
    """Chalice's update path puts the definition again (PutRestApi, mode overwrite)."""
    _, clients, project, endpoint = deployed
    (before,) = clients["apigateway"].get_rest_apis()["items"]
    again = chalice_deploy(project, endpoint)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Updating rest API" in again.stdout
    (after,) = clients["apigateway"].get_rest_apis()["items"]
    assert after["id"] == before["id"]
    resources = clients["apigateway"].get_resources(restApiId=after["id"], limit=500)["items"]
    greedy = next(r for r in resources if r["path"] == "/k8s/{cluster}/{proxy+}")
    assert set(greedy["resourceMethods"]) == PROXY_METHODS

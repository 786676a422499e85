# watchtower as a Python application built from this repository's pyproject.toml.
{ lib, python3Packages, octodns }:

let
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
  # nixpkgs packages octoDNS as an application with its providers beside it (built against the
  # same python3); as modules they join watchtower's own dependencies.
  octodns-module = python3Packages.toPythonModule octodns;
  octodns-powerdns = octodns.providers.powerdns;
in
python3Packages.buildPythonApplication {
  pname = "watchtower";
  inherit (pyproject.project) version;
  pyproject = true;

  src = lib.cleanSourceWith {
    src = ../.;
    filter = path: _type:
      let base = baseNameOf path; in
      !(builtins.elem base [ ".venv" "lab-state" ".git" "result" "__pycache__" ".mypy_cache" ".ruff_cache" ]);
  };

  build-system = [ python3Packages.setuptools python3Packages.wheel ];

  dependencies = with python3Packages; [
    prometheus-client
    apscheduler
    sqlmodel
    streamlit
    requests
    dnspython
    cryptography
    publicsuffixlist
    tomli-w
    signedjson
    canonicaljson
    boto3
    apprise
    dkimpy
    authres
    jinja2
    fpdf2
    octodns-module
    octodns-powerdns
    ruamel-yaml
    sslyze
    tls-parser
    psycopg
    # streamlit's `auth` extra: st.login (the dashboard's OIDC sign-in) imports these
    authlib
    httpx
  ];

  # The unit tests need no servers; the integration tests start real ones and run in CI and in
  # the NixOS VM test instead.
  nativeCheckInputs = with python3Packages; [ pytestCheckHook hypothesis trustme jsonschema ];
  pytestFlagsArray = [ "tests/unit" "-p" "no:cacheprovider" ];
  pythonImportsCheck = [ "watchtower" "watchtower.checks" "watchtower.remediations" ];

  meta = {
    description = "Monitoring, compliance and remediation for fediverse hosting fleets on NixOS";
    license = lib.licenses.agpl3Plus;
    mainProgram = "watchtower";
    platforms = lib.platforms.linux;
  };
}

# NixOS VM test: watchtower, its dashboard and a tiny lab fleet on one machine.
{ pkgs, self }:

pkgs.testers.runNixOSTest {
  name = "watchtower";

  nodes.machine = { pkgs, ... }: {
    imports = [ self.nixosModules.default ];
    nixpkgs.overlays = [ self.overlays.default ];
    virtualisation.memorySize = 2048;
    environment.systemPackages = [ pkgs.curl pkgs.sqlite ];

    # The lab serves the fleet that the example settings describe.
    systemd.services.watchtower-lab = {
      wantedBy = [ "multi-user.target" ];
      before = [ "watchtower.service" ];
      serviceConfig = {
        ExecStart = "${pkgs.watchtower}/bin/watchtower lab --dir /var/lib/watchtower-lab --dns-port 10053 --https-port 10443 --metrics-listen 127.0.0.1:9811";
        StateDirectory = "watchtower-lab";
      };
    };
    systemd.tmpfiles.rules = [
      "f /run/keys/pdns-api-key 0400 root root - test-key"
      # An empty users file: the dashboard needs a sign-in source (module assertion).
      "f /var/lib/watchtower/users.toml 0600 watchtower watchtower -"
    ];

    services.watchtower = {
      enable = true;
      dashboard.enable = true;
      prometheus.enable = true;
      settings = (import ./example-settings.nix) // {
        dashboard.users_file = "/var/lib/watchtower/users.toml";
      };
      secretFiles.pdns-api-key = "/run/keys/pdns-api-key";
    };
    services.prometheus.enable = true;
  };

  testScript = ''
    machine.wait_for_unit("watchtower-lab.service")
    machine.wait_for_open_port(10443)
    machine.wait_for_unit("watchtower.service")
    machine.wait_until_succeeds(
        "curl -sf http://127.0.0.1:9810/metrics | grep -q 'watchtower_check_status{check=\"dns.ns.count\"'",
        timeout=120,
    )
    machine.succeed("sqlite3 /var/lib/watchtower/watchtower.db 'select count(*) from state' | grep -qv '^0$'")
    machine.wait_for_unit("watchtower-dashboard.service")
    machine.wait_for_open_port(8501)
    machine.succeed("curl -sf http://127.0.0.1:8501/ >/dev/null")
    # Prometheus loaded the shipped rules and scrapes watchtower.
    machine.wait_for_unit("prometheus.service")
    machine.wait_for_open_port(9090)
    machine.wait_until_succeeds(
        "curl -sf http://127.0.0.1:9090/api/v1/rules | grep -q WatchtowerCheckFailing",
        timeout=60,
    )
    machine.wait_until_succeeds(
        "curl -sf http://127.0.0.1:9090/api/v1/targets | grep -q '\"job\":\"watchtower\"'",
        timeout=60,
    )
  '';
}

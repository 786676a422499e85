# The example fleet used by the README's NixOS section and by the VM test: a watchtower that
# probes the lab fleet running on the same machine. Pure data: `nix-instantiate --eval --json`
# renders it, and the test suite validates the result with watchtower's own config loader.
{
  probe = {
    nameservers = [ "127.0.0.1:10053" ];
    authoritative_port = 10053;
    ca_bundle = "/var/lib/watchtower-lab/ca/ca.pem";
    jitter = 2;
  };
  zones = [
    { name = "alpha.test"; dnssec = false; customer = "alpha"; }
    { name = "bravo.test"; dnssec = false; customer = "bravo"; }
  ];
  mail_domains = [
    { name = "alpha.test"; dkim_selectors = [ "s1" ]; }
  ];
  services = [
    { name = "social.alpha.test"; kind = "mastodon"; base_url = "https://social.alpha.test:10443/"; probe_account = "watchtower@alpha.test"; }
  ];
  dns_apis = [
    { name = "pdns"; url = "http://127.0.0.1:8081"; api_key = { "$file" = "/run/credentials/watchtower.service/pdns-api-key"; }; zones = [ "alpha.test" ]; }
  ];
  checks = {
    "dns.ns.count" = { interval = 60; };
  };
}

"""Runs one command through a WinRM endpoint with pywinrm, the client upstream's hyperv.py
uses, configured the same way (transport 'ntlm', certificate validation on), and prints one
JSON line: {"status_code", "std_out", "std_err"} or {"exception", "message"}.

Usage: pywinrm_run.py URL USER PASSWORD CA_FILE COMMAND_LINE
"""

import json
import sys

import winrm


def main():
    url, user, password, ca_file, command_line = sys.argv[1:6]
    session = winrm.Session(
        url,
        auth=(user, password),
        transport="ntlm",
        server_cert_validation="validate",
        ca_trust_path=ca_file,
    )
    try:
        r = session.run_cmd(command_line)
    except Exception as e:  # the test asserts on the kind
        print(json.dumps({"exception": type(e).__name__, "message": str(e)}))
        return
    print(
        json.dumps(
            {
                "status_code": r.status_code,
                "std_out": r.std_out.decode("utf-8", "replace"),
                "std_err": r.std_err.decode("utf-8", "replace"),
            }
        )
    )


if __name__ == "__main__":
    main()

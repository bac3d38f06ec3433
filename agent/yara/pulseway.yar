/*
 * signwatch default YARA rules: Pulseway (MMSoft Design Ltd.), a remote
 * monitoring and management (RMM) tool that attackers install for
 * persistence and remote control (MITRE ATT&CK T1219).
 *
 * Built into the signwatch binary; the rule files in `yara_rules` are
 * loaded beside it. signwatch defines these external variables for every
 * scan from the file's Authenticode record:
 *   signer, issuer                         strings ("" when unsigned)
 *   is_signed, is_trusted, digest_matches  booleans (false when unknown)
 *
 * Strength of each rule, strongest first:
 *   Pulseway_Signed_Binary        the Authenticode signer (what the Sentinel
 *                                 rule tests, from the same parse)
 *   Pulseway_Untrusted_Signer     a signer claiming the vendor's name whose
 *                                 signature did not verify or chain
 *   Pulseway_Version_Info         the PE version resource (not signed by
 *                                 itself: anyone can write it)
 *   Pulseway_Agent_Strings        HEURISTIC: strings in the file
 */

import "pe"

rule Pulseway_Signed_Binary
{
    meta:
        description = "Authenticode signer is MMSoft Design, the publisher of the Pulseway RMM agent"
        reference = "https://github.com/jischell-msft/RemoteManagementMonitoringTools"
        author = "signwatch"
        mitre_attack = "T1219"
    condition:
        // Case-insensitive substring; the Sentinel rule's KQL `has` is
        // term-based, so this can also fire on a signer such as
        // "XMMSoft Designs" that the KQL rule would not. signer is taken
        // from the certificate whether or not it verifies: see the next
        // rule for the untrusted case.
        is_signed and signer icontains "MMSoft Design"
}

rule Pulseway_Untrusted_Signer
{
    meta:
        description = "Signer claims to be MMSoft Design (Pulseway) but the signature is not trusted or the file digest does not match"
        reference = "https://github.com/jischell-msft/RemoteManagementMonitoringTools"
        author = "signwatch"
        mitre_attack = "T1219, T1036"
    condition:
        // Either a tampered or repackaged Pulseway binary, or a certificate
        // made up to look like the vendor's. Note: where signwatch has no
        // trust store configured (Linux without ca_file), is_trusted is
        // false for every file and this rule fires on genuine ones too.
        is_signed and signer icontains "MMSoft Design" and
        (not is_trusted or not digest_matches)
}

rule Pulseway_Version_Info
{
    meta:
        description = "PE version information names Pulseway or its vendor MMSoft Design"
        reference = "https://github.com/jischell-msft/RemoteManagementMonitoringTools"
        author = "signwatch"
        mitre_attack = "T1219"
    condition:
        // Catches unsigned or re-signed copies the signer rules miss. The
        // version resource is plain data and can be copied into any file.
        pe.is_pe and (
            pe.version_info["CompanyName"] icontains "MMSoft" or
            pe.version_info["ProductName"] icontains "Pulseway")
}

rule Pulseway_Agent_Strings
{
    meta:
        description = "HEURISTIC: executable contains the Pulseway agent's service and program names"
        reference = "https://github.com/jischell-msft/RemoteManagementMonitoringTools"
        author = "signwatch"
        mitre_attack = "T1219"
        heuristic = "true"
    strings:
        // PCMonitorSrv is the Pulseway agent's Windows service program
        // (the product was called "PC Monitor" before Pulseway);
        // PCMonitorManager its tray/manager program.
        $svc = "PCMonitorSrv" ascii wide nocase
        $mgr = "PCMonitorManager" ascii wide nocase
        $product = "Pulseway" ascii wide nocase
    condition:
        // Only executables, and two of the names together: a lone
        // "Pulseway" is also in uninstallers, inventory and security tools
        // that list RMM products. Still a heuristic: such a tool can carry
        // both names too.
        uint16(0) == 0x5A4D and filesize < 200MB and
        2 of ($svc, $mgr, $product)
}

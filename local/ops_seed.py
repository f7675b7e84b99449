"""What the ops commands find in the local stack's AWS (moto, in the same process): the example config's EKS
cluster (its endpoint the fake Kubernetes API), VM instances for its VM group (one that fails its runbook, one without
the opt-in tag, and a batch group whose every instance fails), its Route 53 zone under the config's zone id with a
few records. The unit
tests seed moto's in-process mock the same way."""

from __future__ import annotations

ACCOUNT = "123456789012"
REGION = "us-east-1"
ZONE = ("shop.example", "Z0SHOPEXAMPLE")
EKS_CLUSTER = "shop"
EKS_CLUSTERS = (EKS_CLUSTER, "shop-staging")  # production's and staging's, both served by the one fake API
RECORDS = (
    ("api.shop.example.", "A", ["192.0.2.10"]),
    ("www.shop.example.", "CNAME", ["shop-lb.example.net."]),
    ("mail.shop.example.", "A", ["192.0.2.25"]),
    ("shop.example.", "MX", ["10 mail.shop.example."]),
    ("shop.example.", "TXT", ['"v=spf1 mx -all"']),
)
WEB_VMS = (  # (Name, extra tags): the shop-web-vms group is tag app=shop-web, and opsbot-ops=enabled opts in
    ("shop-web-1", {"opsbot-ops": "enabled"}),
    ("shop-web-2", {"opsbot-ops": "enabled", "fake-ssm:outcome": "Failed"}),
    ("shop-web-3", {"opsbot-ops": "enabled", "fake-ssm:seconds": "3"}),
    ("shop-web-4", {"opsbot-ops": "enabled"}),
    ("shop-web-legacy", {}),  # not opted in: never targeted
)
STAGING_WEB_VMS = (  # the shop-web-staging-vms group (app=shop-web-staging): GitOps releases of shop-web run here
    ("shop-web-staging-1", {"opsbot-ops": "enabled"}),
    ("shop-web-staging-2", {"opsbot-ops": "enabled", "fake-ssm:seconds": "1"}),
)
BATCH_VMS = (  # the shop-batch-vms group (app=shop-batch): every one fails, so a strict batch stops after the first
    ("shop-batch-1", {"opsbot-ops": "enabled", "fake-ssm:outcome": "Failed", "fake-ssm:seconds": "1"}),
    ("shop-batch-2", {"opsbot-ops": "enabled", "fake-ssm:outcome": "Failed", "fake-ssm:seconds": "1"}),
    ("shop-batch-3", {"opsbot-ops": "enabled", "fake-ssm:outcome": "Failed", "fake-ssm:seconds": "1"}),
)


def seed(session_clients, kubernetes_url: str) -> dict:
    """Create it all through `session_clients(service)` (boto3 clients on moto); returns what was made."""
    ec2 = session_clients("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instances = []
    for name, extra in (*WEB_VMS, *STAGING_WEB_VMS, *BATCH_VMS):
        app = "shop-web" if name == "shop-web-legacy" else name.rsplit("-", 1)[0]  # shop-web-2 is app shop-web
        tags = [{"Key": "Name", "Value": name}, {"Key": "app", "Value": app}]
        tags += [{"Key": k, "Value": v} for k, v in extra.items()]
        made = ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.small",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        instances.append(made["Instances"][0]["InstanceId"])

    eks = session_clients("eks")
    for cluster in EKS_CLUSTERS:
        eks.create_cluster(
            name=cluster,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"], "securityGroupIds": []},
        )
    point_eks_cluster_at(kubernetes_url)

    route53 = session_clients("route53")
    from moto.route53.models import HostedZoneIdentifier
    from moto.utilities.id_generator import moto_id_manager

    # moto names a zone's id after "<name>." (the dot it adds) joined with its delegation set: the config's id
    moto_id_manager.set_custom_id(HostedZoneIdentifier(ACCOUNT, ZONE[0] + ".", None), ZONE[1])
    zone_id = route53.create_hosted_zone(Name=ZONE[0], CallerReference="opsbot-local-seed")["HostedZone"]["Id"]
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {"Name": n, "Type": t, "TTL": 300, "ResourceRecords": [{"Value": v} for v in vs]},
        }
        for n, t, vs in RECORDS
    ]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return {"instances": instances, "zone_id": zone_id.rsplit("/", 1)[-1]}


def point_eks_cluster_at(url: str) -> None:
    """moto gives an EKS cluster a made-up endpoint; the local one is the fake Kubernetes API."""
    from moto.eks.models import eks_backends

    for cluster in EKS_CLUSTERS:
        if cluster in eks_backends[ACCOUNT][REGION].clusters:
            eks_backends[ACCOUNT][REGION].clusters[cluster].endpoint = url

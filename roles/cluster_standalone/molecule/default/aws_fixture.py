"""Molecule fixture: a VPC with two subnets, a registered AMI and its SSM parameter in the moto server."""

import json
import sys

import boto3


def main(endpoint, output):
    session = dict(region_name="us-east-1", endpoint_url=endpoint)
    ec2 = boto3.client("ec2", **session)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.%d.0/24" % index, AvailabilityZone="us-east-1" + zone)[
        "Subnet"]["SubnetId"] for index, zone in ((1, "a"), (2, "b"))]
    volume = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    image = ec2.register_image(Name="flatcar-stable-molecule", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])["ImageId"]
    boto3.client("ssm", **session).put_parameter(Name="/petra/molecule/flatcar", Value=image, Type="String",
                                                 Overwrite=True)
    with open(output, "w") as handle:
        json.dump({"subnets": subnets, "image": image, "parameter": "/petra/molecule/flatcar"}, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

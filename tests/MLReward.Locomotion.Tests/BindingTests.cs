namespace MLReward.Locomotion.Tests;

public class BindingTests
{
    private const string Pendulum = """
        <mujoco model="pendulum">
          <option timestep="0.005" integrator="RK4"/>
          <worldbody>
            <body name="arm" pos="0 0 1">
              <joint name="hinge" type="hinge" axis="0 1 0"/>
              <geom type="capsule" fromto="0 0 0 0.5 0 0" size="0.02"/>
            </body>
          </worldbody>
          <actuator><motor joint="hinge" gear="1"/></actuator>
        </mujoco>
        """;

    [Fact]
    public void AvailabilityIsReportedWithInstallInstructions()
    {
        if (MuJoCo.IsAvailable)
        {
            Assert.Null(MuJoCo.UnavailableReason);
            Assert.Equal(MuJoCo.RequiredVersion, MuJoCo.Version);
            Assert.NotNull(MuJoCo.LibraryName);
        }
        else
        {
            Assert.Contains("sudo apt-get install libmujoco2.2.2 libmujoco-dev", MuJoCo.UnavailableReason);
            var e = Assert.Throws<MuJoCoUnavailableException>(() => MjModel.FromXmlString(Pendulum));
            Assert.Contains("libmujoco2.2.2", e.Message);
        }
    }

    [SkippableFact]
    public void ModelSizesAndTimestepAreRead()
    {
        RequireMuJoCo.OrSkip();
        using var model = MjModel.FromXmlString(Pendulum);
        Assert.Equal((1, 1, 1, 0, 2, 1), (model.Nq, model.Nv, model.Nu, model.Na, model.NBody, model.NJoint));
        Assert.Equal(0.005, model.Timestep);
        model.Timestep = 0.002;
        Assert.Equal(0.002, model.Timestep);
        Assert.Equal(1, model.BodyId("arm"));
        Assert.Equal(-1, model.NameToId(MjObject.Body, "nope"));
        Assert.Equal(0, model.NameToId(MjObject.Joint, "hinge"));
    }

    [SkippableFact]
    public void StateRoundTripsAndStepsAdvanceTime()
    {
        RequireMuJoCo.OrSkip();
        using var model = MjModel.FromXmlString(LocomotionModels.CheetahXml);
        using var data = new MjData(model);
        double[] qpos = Enumerable.Range(0, model.Nq).Select(i => 0.01 * (i + 1)).ToArray();
        double[] qvel = Enumerable.Range(0, model.Nv).Select(i => -0.02 * (i + 1)).ToArray();
        qpos.CopyTo(data.Qpos);
        qvel.CopyTo(data.Qvel);
        data.Ctrl[2] = 0.5;
        Assert.Equal(qpos, data.Qpos.ToArray());
        Assert.Equal(qvel, data.Qvel.ToArray());
        Assert.Equal(0.5, data.Ctrl[2]);

        data.Step();
        Assert.Equal(model.Timestep, data.Time, 12);
        data.Step(4);
        Assert.Equal(5 * model.Timestep, data.Time, 12);
        Assert.NotEqual(qpos, data.Qpos.ToArray());

        data.Reset();
        Assert.Equal(0, data.Time);
        Assert.Equal(model.Qpos0.ToArray(), data.Qpos.ToArray());
        Assert.All(data.Qvel.ToArray(), v => Assert.Equal(0, v));
        Assert.All(data.Ctrl.ToArray(), v => Assert.Equal(0, v));
    }

    [SkippableFact]
    public void BodyPositionsFollowQpos()
    {
        RequireMuJoCo.OrSkip();
        using var model = MjModel.FromXmlString(LocomotionModels.HopperXml);
        using var data = new MjData(model);
        int torso = model.BodyId("torso");
        data.Forward();
        Assert.Equal((0.0, 0.0, 1.25), data.BodyPosition(torso));
        data.Qpos[0] = 0.3;   // rootx
        data.Qpos[1] = 1.0;   // rootz (ref 1.25: the torso's height)
        data.Forward();
        var (x, y, z) = data.BodyPosition(torso);
        Assert.Equal(0.3, x, 12);
        Assert.Equal(0.0, y, 12);
        Assert.Equal(1.0, z, 12);
    }

    [SkippableFact]
    public void MalformedXmlFailsWithMuJoCosMessage()
    {
        RequireMuJoCo.OrSkip();
        var e = Assert.Throws<MuJoCoException>(() => MjModel.FromXmlString("<mujoco><worldbody><body></worldbody></mujoco>"));
        Assert.Contains("XML", e.Message);
        Assert.Contains("the MJCF text", e.Message);
        Assert.DoesNotContain("mlreward-mjcf-", e.Message);
    }

    [SkippableFact]
    public void SchemaErrorsCarryMuJoCosMessage()
    {
        RequireMuJoCo.OrSkip();
        var e = Assert.Throws<MuJoCoException>(() => MjModel.FromXmlString(
            "<mujoco><worldbody><body><joint type=\"spring\"/><geom size=\"0.1\"/></body></worldbody></mujoco>"));
        Assert.Contains("spring", e.Message);
        Assert.Throws<FileNotFoundException>(() => MjModel.FromXmlFile("/nonexistent/model.xml"));
    }

    [SkippableFact]
    public void DisposedObjectsRefuseUse()
    {
        RequireMuJoCo.OrSkip();
        var model = MjModel.FromXmlString(Pendulum);
        var data = new MjData(model);
        data.Dispose();
        Assert.Throws<ObjectDisposedException>(() => data.Step());
        model.Dispose();
        Assert.True(model.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => model.Timestep);
    }
}
